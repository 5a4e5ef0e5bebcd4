/**
 * The demo node's shell: one exec line, split like a POSIX shell (src/shell/split.ts), `sudo` for
 * root, and the few commands flatcar-k3s runs: the installer (`sh <uploaded install-k3s.sh> …`),
 * `systemctl is-active|restart`, `journalctl -u`, `k3s --version`, `k3s kubectl …`, `curl …/ping`,
 * `cat`, `sha256sum`, `install -D -m MODE SRC DST`, `true`, `hostname`, `uname -m`. Anything else answers exit 127 "command not
 * found", as a shell without that command would.
 */
import { splitShellWords } from '../shell/split.js';
import { runScript } from './installer.js';
import { startUnit } from './k3s-model.js';
import { runK3s } from './kubectl.js';
import { normalize, sha256, type DemoNode, type ExecIo } from './node.js';
import type { DemoWorld } from './world.js';

export async function execCommand(w: DemoWorld, node: DemoNode, command: string, io: ExecIo): Promise<number> {
  const argv = splitShellWords(command.trim());
  if (!argv || argv.length === 0) {
    io.err(`bash: the demo node does not simulate this shell syntax: ${command.slice(0, 80)}`);
    return 127;
  }
  let root = false;
  if (argv[0] === 'sudo') {
    root = true;
    argv.shift();
    while (argv[0]?.startsWith('-')) argv.shift();
  }
  const [cmd, ...args] = argv;
  if (!cmd) return 0;
  switch (cmd) {
    case 'true':
      return 0;
    case 'curl':
      return curl(w, args, io);
    case 'hostname':
      io.out(node.readText('/etc/hostname')?.trim() ?? node.name);
      return 0;
    case 'uname':
      io.out(args[0] === '-m' ? 'x86_64' : 'Linux');
      return 0;
    case 'cat':
    case 'sha256sum':
      return readFiles(node, cmd, args, root, io);
    case 'systemctl':
      return systemctl(w, node, args, root, io);
    case 'journalctl':
      return journalctl(node, args, io);
    case 'sh':
      return runScript(w, node, args, root, io);
    case 'install':
      return installFile(node, args, root, io);
    case '/opt/bin/k3s':
    case 'k3s':
    case '/opt/bin/kubectl':
    case 'kubectl':
      return runK3s(w, node, cmd.endsWith('kubectl') ? ['kubectl', ...args] : args, root, io);
    default:
      io.err(`bash: ${cmd}: command not found`);
      return 127;
  }
}

/** Only what flatcar-k3s asks: is the k3s API answering at an address (k3s serves /ping without auth). */
function curl(w: DemoWorld, args: string[], io: ExecIo): number {
  const url = args.find((a) => /^https?:\/\//.test(a));
  const m = url ? /^https:\/\/([^/:]+):6443\/ping$/.exec(url) : null;
  if (!m) {
    io.err(`curl: (6) Could not resolve host: ${url ? new URL(url).hostname : '(none)'}`);
    return 6;
  }
  const c = w.clusterAt(m[1]!);
  if (!c || Date.now() < c.apiReadyAt) {
    io.err(`curl: (7) Failed to connect to ${m[1]} port 6443 after 0 ms: Couldn't connect to server`);
    return 7;
  }
  io.out('pong');
  return 0;
}

/** `cat` or `sha256sum` of files, with the file modes a non-root user meets. */
function readFiles(node: DemoNode, cmd: 'cat' | 'sha256sum', args: string[], root: boolean, io: ExecIo): number {
  let code = 0;
  for (const a of args) {
    const p = normalize(a);
    const f = node.fs.get(p);
    const r = !f ? 'missing' : root || f.owner === 'core' || f.mode & 0o004 ? 'ok' : 'denied';
    if (r !== 'ok') {
      io.err(`${cmd}: ${a}: ${r === 'missing' ? 'No such file or directory' : 'Permission denied'}`);
      code = 1;
      continue;
    }
    const data = f!.data;
    if (cmd === 'cat') for (const l of data.toString('utf8').replace(/\n$/, '').split('\n')) io.out(l);
    else io.out(`${sha256(data)}  ${a}`);
  }
  return code;
}

function systemctl(w: DemoWorld, node: DemoNode, args: string[], root: boolean, io: ExecIo): number {
  const sub = args.find((a) => !a.startsWith('-'));
  const quiet = args.includes('--quiet') || args.includes('-q');
  const units = args.filter((a) => !a.startsWith('-') && a !== sub).map((u) => u.replace(/\.service$/, ''));
  if (sub === 'is-active') {
    let code = 0;
    for (const u of units) {
      const s = node.units.get(u)?.state ?? 'inactive';
      if (!quiet) io.out(s);
      if (s !== 'active') code = 3;
    }
    return code;
  }
  if (!root) {
    io.err('Failed to ' + sub + ': Interactive authentication required.');
    return 1;
  }
  if (sub === 'restart') {
    const unknown = units.find((u) => !node.units.has(u));
    if (unknown || units.length === 0) {
      io.err(`Failed to restart ${unknown ?? ''}.service: Unit ${unknown ?? ''}.service not found.`);
      return 5;
    }
    for (const u of units) startUnit(w, node, u);
    return 0;
  }
  io.err(`systemctl ${sub}: not simulated by the demo node`);
  return 1;
}

function journalctl(node: DemoNode, args: string[], io: ExecIo): number {
  const ui = args.indexOf('-u');
  const unit = ui >= 0 ? args[ui + 1]?.replace(/\.service$/, '') : undefined;
  const ni = args.indexOf('-n');
  const n = ni >= 0 ? Number(args[ni + 1]) : 100;
  if (!unit) {
    io.err('journalctl: the demo node only answers "journalctl -u UNIT"');
    return 1;
  }
  const j = node.units.get(unit)?.journal ?? [];
  if (j.length === 0) io.out('-- No entries --');
  for (const l of j.slice(-n)) io.out(l);
  return 0;
}

/** `install -D -m MODE SRC DST` (the air-gap image archives): copy with parents and a mode, as root. */
function installFile(node: DemoNode, args: string[], root: boolean, io: ExecIo): number {
  const mi = args.indexOf('-m');
  const mode = mi >= 0 ? parseInt(args[mi + 1] ?? '644', 8) : 0o755;
  const paths = args.filter((a, i) => !a.startsWith('-') && i !== mi + 1);
  if (!args.includes('-D') || paths.length !== 2) {
    io.err('install: the demo node only simulates "install -D -m MODE SRC DST"');
    return 1;
  }
  const src = node.fs.get(normalize(paths[0]!));
  if (!src) {
    io.err(`install: cannot stat '${paths[0]}': No such file or directory`);
    return 1;
  }
  if (!root) {
    io.err(`install: cannot create regular file '${paths[1]}': Permission denied`);
    return 1;
  }
  node.writeFile(normalize(paths[1]!), src.data, mode, 'root');
  return 0;
}
