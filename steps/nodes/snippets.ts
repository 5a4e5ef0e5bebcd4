/**
 * nodes:snippets: each node's Ignition (base + hostname + static address + SSH keys) as a snippet on
 * the Proxmox host, <snippetsPath>/snippets/flatcar-k3s-<cluster>-<node>-<hash12>.ign, written over
 * SFTP (Proxmox has no API for snippets). cicustom=user=… replaces what Proxmox would generate, so
 * each node needs its own. One SSH session per host uploads them; the hash in the name means an
 * unchanged file is never written twice. A VM reads its snippet on the host it runs on: with a snippets
 * storage that is not shared, each node's snippet goes to the host the placement gave it.
 */
import { posix } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { planNodes, type PlannedNode } from '../../src/config/layout.js';
import { checkCloudInitSize } from '../../src/ignition/index.js';
import { sh } from '../../src/shell/quote.js';
import type { SshSession } from '../../src/ssh/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { connectPveSsh } from '../template/pve-ssh.js';
import { snippetPath } from '../template/snippet.js';
import { NODES_STEP, nodeSnippet, type PlacementOutputs, type SnippetsOutputs } from './common.js';
import { facts } from '../shared.js';

export function snippetsStep(config: Config, _options: RunOptions, planned?: PlannedNode[]): Step {
  const storage = config.proxmox.storage.snippets;
  const nodes = planned ?? planNodes(config);
  const all = (ctx: StepContext) => nodes.map((n) => ({ node: n, ...nodeSnippet(config, n, { hostDns: facts(ctx).hostDns }) }));
  return {
    id: NODES_STEP.snippets,
    title: 'Upload the nodes’ Ignition configs',
    group: 'nodes',
    // Independent of the template: uploads while the template is being built.
    needs: [STEP.proxmoxConnect, NODES_STEP.placement],
    inputs: {
      storage,
      nodes: nodes.map((n) => [n.name, n.address, n.mac]),
      ignition: config.flatcar.ignition,
      sshKeys: config.nodes.sshKeys,
      keyFile: config.nodes.sshPrivateKeyFile,
      network: config.nodes.network,
    },
    describe: () =>
      `Upload ${nodes.length} Ignition snippets (hostname, address, SSH keys) to ${storage}:snippets over SSH (skipped when present)`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const snippets = all(ctx);
      const base = facts(ctx).snippetsPath;
      const prev = ctx.outputs<SnippetsOutputs>(NODES_STEP.snippets);
      // Never uploaded by this cluster's state: nothing to verify on the host (saves an SSH round).
      if (!prev?.snippets) return { done: false };
      const targets = targetsOf(ctx);
      for (const [host, list] of byHost(snippets, targets)) {
        const session = await connectPveSsh(ctx, host);
        try {
          for (const s of list) {
            const st = await session.stat(snippetPath(base, s.file));
            if (!st || st.size !== Buffer.byteLength(s.json))
              return { done: false, reason: `${s.file} is missing${host ? ` on ${host}` : ''}` };
          }
        } finally {
          await session.close();
        }
      }
      return {
        done: true,
        outputs: outputs(snippets, targets),
        reason: `all ${snippets.length} snippets are on the host${targets.size ? 's' : ''}`,
      };
    },
    async run(ctx: StepContext): Promise<SnippetsOutputs> {
      const snippets = all(ctx);
      for (const s of snippets) checkCloudInitSize([{ label: s.file, data: s.json }]);
      const base = facts(ctx).snippetsPath;
      const targets = targetsOf(ctx);
      let done = 0;
      for (const [host, list] of byHost(snippets, targets)) {
        if (host) ctx.log(`${list.map((s) => s.node.name).join(', ')}: snippets to ${host} (its ${storage} is not shared)`);
        const session = await connectPveSsh(ctx, host);
        try {
          const dir = posix.join(base, 'snippets');
          if (!(await session.stat(dir))) await session.run(sh`mkdir -p ${dir}`, { signal: ctx.signal });
          const queue = [...list];
          const worker = async () => {
            for (let s = queue.shift(); s; s = queue.shift()) {
              await upload(ctx, session, snippetPath(base, s.file), s.json);
              done++;
              ctx.progress(`${done}/${snippets.length} snippets`, done / snippets.length);
            }
          };
          // --parallel bounds the uploads in flight too (at most 32 on the one SFTP channel).
          await Promise.all(Array.from({ length: Math.max(1, Math.min(32, ctx.options.parallel || 8, list.length)) }, worker));
        } finally {
          await session.close();
        }
      }
      return outputs(snippets, targets);
    },
  };

  /** node name → the PVE host its snippet goes to; empty when the snippets storage is shared (one upload). */
  function targetsOf(ctx: StepContext): Map<string, string> {
    const p = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
    if (!p || p.snippetsShared || new Set(Object.values(p.placement)).size < 2) return new Map();
    return new Map(Object.entries(p.placement));
  }

  function byHost(snippets: ReturnType<typeof all>, targets: Map<string, string>): Map<string | undefined, ReturnType<typeof all>> {
    const out = new Map<string | undefined, ReturnType<typeof all>>();
    for (const s of snippets) {
      const h = targets.get(s.node.name);
      out.set(h, [...(out.get(h) ?? []), s]);
    }
    return out;
  }

  function outputs(snippets: ReturnType<typeof all>, targets: Map<string, string>): SnippetsOutputs {
    return {
      snippets: Object.fromEntries(
        snippets.map((s) => [
          s.node.name,
          {
            volid: `${storage}:snippets/${s.file}`,
            hash12: s.hash12,
            ...(targets.has(s.node.name) ? { host: targets.get(s.node.name)! } : {}),
          },
        ]),
      ),
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

/**
 * A VM reads its snippet on the host it runs on: when the snippets storage is not shared and there
 * are several hosts, is the node's snippet on the VM's current host (it may have been moved there)?
 * With `repair`, upload it there when it is not. Returns undefined when there is nothing to verify.
 */
export async function snippetOnVmHost(
  ctx: StepContext,
  config: Config,
  node: PlannedNode,
  vmHost: string,
  repair: boolean,
): Promise<boolean | undefined> {
  const p = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
  if (!p || p.snippetsShared || facts(ctx).pveNodes.length < 2) return undefined;
  const s = nodeSnippet(config, node, { hostDns: facts(ctx).hostDns });
  const path = snippetPath(facts(ctx).snippetsPath, s.file);
  const session = await connectPveSsh(ctx, vmHost);
  try {
    const st = await session.stat(path);
    if (st?.size === Buffer.byteLength(s.json)) return true;
    if (!repair) return false;
    ctx.log(`${node.name} runs on ${vmHost}, whose ${config.proxmox.storage.snippets} lacks ${s.file}: uploading it there`, 'warn');
    await upload(ctx, session, path, s.json);
    return true;
  } finally {
    await session.close();
  }
}
