/**
 * nodes:snippets: each node's Ignition (base + hostname + static address + SSH keys) as a snippet on
 * the Proxmox host, <snippetsPath>/snippets/flatcar-k3s-<cluster>-<node>-<hash12>.ign, written over
 * SFTP (Proxmox has no API for snippets). cicustom=user=… replaces what Proxmox would generate, so
 * each node needs its own. One SSH session uploads all of them; the hash in the name means an
 * unchanged file is never written twice.
 */
import { posix } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import { checkCloudInitSize } from '../../src/ignition/index.js';
import { sh } from '../../src/shell/quote.js';
import type { SshSession } from '../../src/ssh/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { connectPveSsh } from '../template/pve-ssh.js';
import { snippetPath } from '../template/snippet.js';
import { NODES_STEP, nodeSnippet, type SnippetsOutputs } from './common.js';
import { facts } from '../shared.js';

export function snippetsStep(config: Config, _options: RunOptions): Step {
  const storage = config.proxmox.storage.snippets;
  const nodes = planNodes(config);
  const all = (ctx: StepContext) => nodes.map((n) => ({ node: n, ...nodeSnippet(config, n, { hostDns: facts(ctx).hostDns }) }));
  return {
    id: NODES_STEP.snippets,
    title: 'Upload the nodes’ Ignition configs',
    group: 'nodes',
    // Independent of the template: uploads while the template is being built.
    needs: [STEP.proxmoxConnect],
    inputs: { storage, nodes: nodes.map((n) => [n.name, n.address, n.mac]), ignition: config.flatcar.ignition, sshKeys: config.nodes.sshKeys, keyFile: config.nodes.sshPrivateKeyFile, network: config.nodes.network },
    describe: () => `Upload ${nodes.length} Ignition snippets (hostname, address, SSH keys) to ${storage}:snippets over SSH (skipped when present)`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const snippets = all(ctx);
      const base = facts(ctx).snippetsPath;
      const prev = ctx.outputs<SnippetsOutputs>(NODES_STEP.snippets);
      // Never uploaded by this cluster's state: nothing to verify on the host (saves an SSH round).
      if (!prev?.snippets) return { done: false };
      const session = await connectPveSsh(ctx);
      try {
        for (const s of snippets) {
          const st = await session.stat(snippetPath(base, s.file));
          if (!st || st.size !== Buffer.byteLength(s.json)) return { done: false, reason: `${s.file} is missing` };
        }
      } finally {
        await session.close();
      }
      return { done: true, outputs: outputs(snippets), reason: `all ${snippets.length} snippets are on the host` };
    },
    async run(ctx: StepContext): Promise<SnippetsOutputs> {
      const snippets = all(ctx);
      for (const s of snippets) checkCloudInitSize([{ label: s.file, data: s.json }]);
      const base = facts(ctx).snippetsPath;
      const session = await connectPveSsh(ctx);
      try {
        const dir = posix.join(base, 'snippets');
        if (!(await session.stat(dir))) await session.run(sh`mkdir -p ${dir}`, { signal: ctx.signal });
        let done = 0;
        const queue = [...snippets];
        const worker = async () => {
          for (let s = queue.shift(); s; s = queue.shift()) {
            await upload(ctx, session, snippetPath(base, s.file), s.json);
            done++;
            ctx.progress(`${done}/${snippets.length} snippets`, done / snippets.length);
          }
        };
        // --parallel bounds the uploads in flight too (at most 32 on the one SFTP channel).
        await Promise.all(Array.from({ length: Math.max(1, Math.min(32, ctx.options.parallel || 8, snippets.length)) }, worker));
      } finally {
        await session.close();
      }
      return outputs(snippets);
    },
  };

  function outputs(snippets: ReturnType<typeof all>): SnippetsOutputs {
    return {
      snippets: Object.fromEntries(snippets.map((s) => [s.node.name, { volid: `${storage}:snippets/${s.file}`, hash12: s.hash12 }])),
    };
  }
}

/** The hash is in the file name and writes are atomic (temp + rename): a file of the right size is the right file. */
async function upload(ctx: StepContext, session: SshSession, path: string, json: string): Promise<void> {
  const size = Buffer.byteLength(json);
  const st = await session.stat(path);
  if (st?.size === size) return;
  ctx.log(`Writing ${path} (${size} bytes)`);
  await session.writeFile(path, json, 0o644);
}
