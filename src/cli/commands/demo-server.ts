/** `demo-server`: run the Proxmox VE simulator (with the demo mirror and guests) in the foreground. */
import { EXIT } from '../../errors.js';
import { GLOBAL_USAGE, UsageError, parseCommandArgs } from '../args.js';
import { writeLine, type CliIo } from '../io.js';

export const name = 'demo-server';
export const summary = 'run a simulated Proxmox VE (HTTPS API + SSH) on loopback, for trying things out';
export const usage = `Usage: flatcar-k3s demo-server [--port N] [--nodes N] [--shared-storage] [--speed X] [--pve-version V] [--json] [--fail SPEC]...

Starts the Proxmox VE simulator on 127.0.0.1 and keeps it running until Ctrl-C: the HTTPS API
(/api2/json/…, validated against the official API schema), the PVE host's SSH (SFTP for snippets),
and a loopback mirror with the demo release files. Prints the URL, an API token, the certificate
fingerprint, the SSH access and a config snippet that, with "preset: homelab", is a complete config
for "flatcar-k3s up --config FILE".

With --state-dir DIR the simulated world (VMs, storage, certificate, token, keys, the nodes and their
k3s) is kept in DIR/demo and continued by the next demo-server or "up --demo" with that state dir; its
saved node count and PVE version then win over --nodes and --pve-version. Without --state-dir it is
thrown away at Ctrl-C. Delete DIR/demo to start over.

Options:
  --port N            API port (default: a free one)
  --nodes N           number of PVE nodes pve1..pveN (default 1); each has its own local and local-lvm
                      storage and its own SSH (127.0.0.N)
  --shared-storage    also add the shared storage "nfs" (images, snippets, import on every node): set
                      proxmox.storage.disks, images and snippets to nfs and one template serves all nodes
  --speed X           time scale: 1 = real Proxmox timings, 0.05 = 20x faster (default), 0 = instant
  --pve-version V     version to present, e.g. 8.3.5, 8.4.1 (default) or 9.1.2; features follow it
  --json              print one JSON line {url, tokenId, tokenSecret, fingerprint, node, config} and nothing else
  --fail SPEC         inject a fault (repeatable):
                        'POST /nodes/*/qemu/*/clone#2=500:message'  fail the 2nd matching call
                        'task:qmclone#1=message'                    fail the 1st clone task
                        'drop:GET /version#1'                       drop the connection
                        'slow:pve2=5'                               pve2 takes 5 times longer
                      more at runtime: POST /_sim/faults {"spec": "…"}; inspect GET /_sim/requests, /_sim/tasks

${GLOBAL_USAGE}`;

function num(value: string | undefined, flag: string, min: number, max: number, int = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new UsageError(`${flag} must be ${int ? 'a whole number' : 'a number'} from ${min} to ${max} (got "${value}")`, usage);
  }
  return n;
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      port: { type: 'string' },
      nodes: { type: 'string' },
      'shared-storage': { type: 'boolean' },
      speed: { type: 'string' },
      'pve-version': { type: 'string' },
      json: { type: 'boolean' },
      fail: { type: 'string', multiple: true },
    },
    usage,
  );
  if (values.help) {
    writeLine(io.stdout, usage);
    return EXIT.ok;
  }
  const port = num(values.port, '--port', 0, 65535);
  const nodes = num(values.nodes, '--nodes', 1, 16);
  const speed = num(values.speed, '--speed', 0, 100, false);
  const pveVersion = values['pve-version'];
  if (pveVersion !== undefined && !/^(8|9)\.\d+\.\d+$/.test(pveVersion))
    throw new UsageError(`--pve-version must look like 8.4.1 or 9.1.2 (got "${pveVersion}")`, usage);

  const [{ mkdtempSync, rmSync, writeFileSync }, { tmpdir }, { join }, { stringify }, { shq }, { startDemo }, { Faults, applyFaultSpec }] =
    await Promise.all([
      import('node:fs'),
      import('node:os'),
      import('node:path'),
      import('yaml'),
      import('../../shell/quote.js'),
      import('../../demo/index.js'),
      import('../../sim/faults.js'),
    ]);
  // check fault specs before starting anything
  for (const spec of values.fail ?? []) {
    try {
      applyFaultSpec(spec, new Faults(), () => {});
    } catch (e) {
      throw new UsageError((e as Error).message, usage);
    }
  }

  const explicitState = values['state-dir'];
  const stateDir = explicitState ?? mkdtempSync(join(tmpdir(), 'flatcar-k3s-demo-server-'));
  const certDir = mkdtempSync(join(tmpdir(), 'flatcar-k3s-demo-ca-'));
  const demo = await startDemo({
    stateDir,
    speed,
    pveNodes: nodes,
    log: (line) => {
      if (!values.json) writeLine(io.stderr, line);
    },
    sim: { port, pveVersion, faults: values.fail, ...(values['shared-storage'] ? { sharedStorage: true } : {}) },
  });
  const { sim } = demo;
  try {
    const certFile = join(certDir, 'pve-root-ca.pem');
    writeFileSync(certFile, sim.certPem);
    // with the shared storage, the config uses it for everything: one template serves every node
    const shared = sim.state.storages.get('nfs')?.shared
      ? { proxmox: { ...(demo.overrides.proxmox as object), storage: { disks: 'nfs', images: 'nfs', snippets: 'nfs' } } }
      : {};
    const config = { preset: 'homelab', ...demo.overrides, ...shared };
    if (values.json) {
      writeLine(
        io.stdout,
        JSON.stringify({
          url: sim.url,
          tokenId: sim.token.tokenId,
          tokenSecret: sim.token.tokenSecret,
          fingerprint: sim.fingerprint,
          node: sim.node,
          config,
        }),
      );
    } else {
      const out = (l = '') => writeLine(io.stdout, l);
      out(`Simulated Proxmox VE ${sim.state.version} is running (nodes: ${sim.nodes.join(', ')}, speed ${speed ?? 0.05}).`);
      out();
      out(`  URL           ${sim.url}`);
      out(`  API token     ${sim.token.tokenId}`);
      out(`  token secret  ${sim.token.tokenSecret}`);
      out(`  fingerprint   ${sim.fingerprint}`);
      out(`  certificate   ${certFile}`);
      out(`  login         ${sim.login.username} / ${sim.login.password}`);
      if (sim.ssh) {
        const keyFile = (demo.overrides.proxmox as { ssh?: { privateKeyFile?: string } }).ssh?.privateKeyFile ?? sim.ssh.privateKeyPath;
        for (const [node, s] of Object.entries(sim.sshNodes)) {
          out(`  SSH ${node.padEnd(9)} ssh -i ${shq(keyFile)} -p ${s.port} ${s.user}@${s.host}   (host key ${s.hostKeyFingerprint})`);
        }
      }
      out(`  mirror        ${sim.mirror.url}`);
      out();
      out('Try it (the certificate is pinned with --cacert, no -k):');
      out(
        `  curl --cacert ${shq(certFile)} -H ${shq(`Authorization: PVEAPIToken=${sim.token.tokenId}=${sim.token.tokenSecret}`)} ${shq(`${sim.url}/api2/json/version`)}`,
      );
      out();
      out('Config (save as demo.yaml, then: flatcar-k3s up --config demo.yaml):');
      out(
        stringify(config, { lineWidth: 0 })
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
      );
      out();
      out('Press Ctrl-C to stop.');
    }
    await new Promise<void>((resolve) => {
      let uninstall: (() => void) | undefined;
      const stop = () => {
        uninstall?.();
        resolve();
      };
      if (io.onSignal) uninstall = io.onSignal(stop);
      else {
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        uninstall = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        };
      }
    });
    if (!values.json) writeLine(io.stderr, 'Stopping the simulator…');
    return EXIT.ok;
  } finally {
    await demo.close();
    rmSync(certDir, { recursive: true, force: true });
    if (!explicitState) rmSync(stateDir, { recursive: true, force: true });
  }
}
