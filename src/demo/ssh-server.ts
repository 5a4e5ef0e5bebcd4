/**
 * The demo node's SSH side: the shared simulated-host SSH server (src/sim/sshd.ts) on the node's
 * loopback address with its host key, accepting `core` with the keys from the node's Ignition, exec
 * lines handed to the node's shell and SFTP to its filesystem, plus the injected faults (connection
 * drops, failing commands).
 */
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { startSshd, type Sshd } from '../sim/sshd.js';
import type { DemoNode, ExecIo } from './node.js';
import { serveSftp } from './sftp.js';
import { execCommand } from './shell.js';
import type { DemoWorld } from './world.js';

const { utils } = ssh2;
const starting = new WeakMap<DemoNode, Promise<Sshd>>();

/** Start the node's SSH server (once: a second call waits for the first). */
export async function listen(w: DemoWorld, node: DemoNode): Promise<void> {
  if (node.sshd) return;
  let pending = starting.get(node);
  if (!pending) {
    pending = startSshd({
      host: node.address,
      port: w.opts.sshPort,
      hostKey: node.hostKey.privateKey,
      authorize: (user, offered) => {
        if (user !== 'core') return undefined;
        const key = node.authorizedKeys.find((k) => k.type === offered.algo && k.data.equals(offered.data));
        if (!key) return undefined;
        const parsed = utils.parseKey(`${key.type} ${key.data.toString('base64')}`);
        const pub = Array.isArray(parsed) ? parsed[0] : parsed;
        return !pub || pub instanceof Error ? undefined : pub;
      },
      exec: (command, ch, conn) => void runExec(w, node, conn, ch, command),
      sftp: (sftp) => serveSftp(node, sftp, () => w.persist()),
    });
    starting.set(node, pending);
  }
  try {
    node.sshd = await pending;
  } finally {
    starting.delete(node);
  }
}

/** The VM stopped (or the world closes): its units stop, its connections and SSH server go. */
export async function stopNode(w: DemoWorld, node: DemoNode): Promise<void> {
  for (const [, u] of node.units) {
    u.generation++;
    if (u.state !== 'inactive') u.state = 'inactive';
  }
  w.persist();
  const pending = starting.get(node);
  const sshd = node.sshd ?? (pending ? await pending.catch(() => undefined) : undefined);
  node.sshd = undefined;
  if (sshd) await sshd.close();
}

async function runExec(w: DemoWorld, node: DemoNode, client: Connection, ch: ServerChannel, command: string): Promise<void> {
  const drop = w.drops.find((d) => d.node === node.name && d.times > 0 && d.match.test(command));
  if (drop) drop.times--;
  if (drop?.when === 'before') {
    w.log(`demo fault: dropping the connection to ${node.name} before \`${command.slice(0, 60)}\``);
    client.end();
    return;
  }
  let closedCh = false;
  ch.on('close', () => (closedCh = true));
  const io: ExecIo = {
    out: (l) => {
      if (!closedCh) ch.write(`${l}\n`);
    },
    err: (l) => {
      if (!closedCh) ch.stderr.write(`${l}\n`);
    },
    sleep: (ms) => w.sleep(ms),
  };
  let code: number;
  const failure = w.failures.find((f) => f.node === node.name && f.times > 0 && f.match.test(command));
  try {
    if (failure) {
      failure.times--;
      w.log(`demo fault: \`${command.slice(0, 60)}\` fails on ${node.name}`);
      io.err(failure.stderr);
      code = failure.code;
    } else code = await execCommand(w, node, command, io);
  } catch (err) {
    io.err(`demo node error: ${(err as Error).message}`);
    code = 1;
  }
  w.persist();
  if (drop?.when === 'after') {
    w.log(`demo fault: dropping the connection to ${node.name} after \`${command.slice(0, 60)}\``);
    client.end();
    return;
  }
  if (closedCh) return;
  ch.exit(code);
  ch.end();
}
