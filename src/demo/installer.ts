/**
 * The demo's model of src/k3s/node/install-k3s.sh: the same arguments and checks (a binary whose
 * sha256 differs is never installed), the same "RESULT installed|unchanged|binary" answer, and a
 * (re)start of the k3s unit when something changed.
 */
import { startUnit } from './k3s-model.js';
import { normalize, sha256, type DemoNode, type ExecIo } from './node.js';
import type { DemoWorld } from './world.js';

const INSTALLER_MARK = '# install-k3s.sh: install or update k3s on a Flatcar node.';

interface InstallArgs {
  role?: string;
  version?: string;
  sha256?: string;
  url?: string;
  binary?: string;
  config?: string;
  manifests: string[];
  binaryOnly?: boolean;
}

/** `sh <script> …`: only the shipped installer is simulated. */
export async function runScript(w: DemoWorld, node: DemoNode, args: string[], root: boolean, io: ExecIo): Promise<number> {
  const [script, ...rest] = args;
  if (!script) {
    io.err('sh: the demo node does not run an interactive shell');
    return 127;
  }
  const text = node.readText(normalize(script));
  if (text === undefined) {
    io.err(`sh: 0: cannot open ${script}: No such file`);
    return 2;
  }
  if (!text.includes(INSTALLER_MARK)) {
    io.err(`sh: ${script}: the demo node only runs flatcar-k3s's install-k3s.sh`);
    return 127;
  }
  if (!root) {
    io.err('mkdir: cannot create directory ‘/opt/bin’: Permission denied');
    return 1;
  }
  return simulateInstaller(w, node, rest, io);
}

/** The installer's arguments, or the error it dies with. */
function parseInstallArgs(node: DemoNode, args: string[]): InstallArgs | string {
  const o: InstallArgs = { manifests: [] };
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]!;
    if (k === '--binary-only') {
      o.binaryOnly = true;
      i--;
      continue;
    }
    const v = args[i + 1];
    if (v === undefined) return `${k} needs a value`;
    if (k === '--role') o.role = v;
    else if (k === '--version') o.version = v;
    else if (k === '--sha256') o.sha256 = v;
    else if (k === '--url') o.url = v;
    else if (k === '--binary') o.binary = normalize(v);
    else if (k === '--config') o.config = normalize(v);
    else if (k === '--manifest') o.manifests.push(normalize(v));
    else return `unknown argument: ${k}`;
  }
  if (!o.binaryOnly && o.role !== 'server' && o.role !== 'agent') return `--role must be server or agent (given: '${o.role ?? ''}')`;
  if (!o.version || !/^v\d+\.\d+\.\d+\+k3s\d+$/.test(o.version))
    return `--version must look like v1.33.4+k3s1 (given: '${o.version ?? ''}')`;
  if (!o.sha256 || !/^[0-9a-f]{64}$/.test(o.sha256)) return '--sha256 must be 64 lower-case hex digits';
  if (!o.url && !o.binary) return 'give --url or --binary';
  for (const f of [o.config, o.binary, ...o.manifests]) if (f && !node.fs.has(f)) return `staged file ${f} is missing`;
  return o;
}

/** Put the verified binary in /opt/bin/k3s: true when it changed, a string when the installer dies. */
async function installBinary(w: DemoWorld, node: DemoNode, o: InstallArgs, io: ExecIo): Promise<boolean | string> {
  const say = (s: string) => io.out(`flatcar-k3s: ${s}`);
  const current = node.fs.get('/opt/bin/k3s');
  if (current && sha256(current.data) === o.sha256) {
    say(`k3s ${o.version} already in /opt/bin/k3s (sha256 matches)`);
    if (o.binary) node.fs.delete(o.binary);
    return false;
  }
  let data: Buffer;
  if (o.binary) {
    say(`installing the uploaded k3s ${o.version}`);
    data = node.fs.get(o.binary)!.data;
    node.fs.delete(o.binary);
  } else {
    say(`downloading k3s ${o.version}`);
    try {
      const res = await fetch(o.url!);
      if (!res.ok) throw new Error(`The requested URL returned error: ${res.status}`);
      data = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      io.err(`curl: (22) ${(err as Error).message}`);
      return `download failed: ${o.url}`;
    }
    node.binaryMs = w.dur(3);
    await io.sleep(node.binaryMs);
  }
  const got = sha256(data);
  if (got !== o.sha256) return `sha256 mismatch for k3s ${o.version}: expected ${o.sha256}, got ${got}; the binary was not installed`;
  node.writeFile('/opt/bin/k3s', data, 0o755, 'root');
  say(`installed /opt/bin/k3s (sha256 ${o.sha256})`);
  return true;
}

/** Move the staged config and manifests into place and write the unit: true when anything changed. */
function installFiles(node: DemoNode, o: InstallArgs, unit: string, say: (s: string) => void): boolean {
  let changed = false;
  const installSecret = (src: string, dest: string) => {
    const staged = node.fs.get(src)!;
    node.fs.delete(src);
    const old = node.fs.get(dest);
    if (old && old.data.equals(staged.data)) return;
    node.writeFile(dest, staged.data, 0o600, 'root');
    say(`wrote ${dest}`);
    changed = true;
  };
  if (o.config) installSecret(o.config, '/etc/rancher/k3s/config.yaml');
  for (const m of o.manifests) {
    if (o.role === 'server') installSecret(m, `/var/lib/rancher/k3s/server/manifests/${m.split('/').pop()}`);
    else node.fs.delete(m);
  }
  const unitPath = `/etc/systemd/system/${unit}.service`;
  const unitText = `# Written by flatcar-k3s (install-k3s.sh) for k3s ${o.version}\n[Service]\nType=${o.role === 'server' ? 'notify' : 'exec'}\nExecStart=/opt/bin/k3s ${o.role}\n`;
  if (node.readText(unitPath) !== unitText) {
    node.writeFile(unitPath, unitText, 0o644, 'root');
    say(`wrote ${unitPath}`);
    changed = true;
  }
  return changed;
}

async function simulateInstaller(w: DemoWorld, node: DemoNode, args: string[], io: ExecIo): Promise<number> {
  const say = (s: string) => io.out(`flatcar-k3s: ${s}`);
  const die = (s: string) => {
    io.err(`flatcar-k3s: error: ${s}`);
    return 1;
  };
  const o = parseInstallArgs(node, args);
  if (typeof o === 'string') return die(o);
  const unit = o.role === 'server' ? 'k3s' : 'k3s-agent';
  const binary = await installBinary(w, node, o, io);
  if (typeof binary === 'string') return die(binary);
  for (const l of ['kubectl', 'crictl', 'ctr'])
    node.fs.set(`/opt/bin/${l}`, { data: Buffer.alloc(0), mode: 0o777, owner: 'root', link: 'k3s' });
  if (o.binaryOnly) {
    io.out('RESULT binary');
    return 0;
  }
  const files = installFiles(node, o, unit, say);
  const u = node.unit(unit);
  if (!binary && !files && (u.state === 'active' || u.state === 'activating')) {
    say(`k3s ${o.version} is installed and ${unit} is ${u.state}; nothing to do`);
    io.out('RESULT unchanged');
    return 0;
  }
  say(`${u.state === 'active' || u.state === 'activating' ? 'restarting' : 'starting'} ${unit}`);
  u.enabled = true;
  startUnit(w, node, unit);
  io.out('RESULT installed');
  return 0;
}
