/**
 * template:snippet: write the template's Ignition JSON to the snippets storage of the Proxmox host
 * over SFTP. The file name carries the content hash, so a changed config is a new file and an
 * unchanged one is never uploaded twice.
 */
import { posix } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { RemoteError } from '../../src/errors.js';
import { checkCloudInitSize } from '../../src/ignition/index.js';
import { sh } from '../../src/shell/quote.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { TEMPLATE_STEP, missingContentError, storageContentTypes, templateSnippet, type SnippetOutputs } from './common.js';
import { facts } from '../shared.js';
import { connectPveSsh } from './pve-ssh.js';

export function snippetPath(snippetsPath: string, file: string): string {
  return posix.join(snippetsPath, 'snippets', file);
}

/** Shown in the plan when flatcar.ignition.consoleAutologin keeps Flatcar's console autologin. */
export const CONSOLE_AUTOLOGIN_WARNING =
  'WARNING: console autologin is on (flatcar.ignition.consoleAutologin): anyone with Proxmox console access gets a shell as core, with sudo';

export function snippetStep(config: Config, _options: RunOptions): Step {
  const storage = config.proxmox.storage.snippets;
  return {
    id: TEMPLATE_STEP.snippet,
    title: 'Upload the Ignition config',
    group: 'template',
    needs: [STEP.proxmoxConnect],
    inputs: { storage, ignition: config.flatcar.ignition, sshKeys: config.nodes.sshKeys, ssh: config.proxmox.ssh },
    describe: () => {
      const s = templateSnippet(config);
      const autologin = config.flatcar.ignition.consoleAutologin ? `; ${CONSOLE_AUTOLOGIN_WARNING}` : '';
      return `Upload the template's Ignition (${Buffer.byteLength(s.json)} bytes) as ${storage}:snippets/${s.file} over SSH (skipped when present)${autologin}`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const s = templateSnippet(config);
      const path = snippetPath(facts(ctx).snippetsPath, s.file);
      const session = await connectPveSsh(ctx);
      try {
        const st = await session.stat(path);
        if (!st || st.size !== Buffer.byteLength(s.json)) return { done: false };
        const remote = await session.readFile(path);
        if (!remote.equals(Buffer.from(s.json))) return { done: false, reason: `${path} differs from the generated config` };
      } finally {
        await session.close();
      }
      return { done: true, outputs: outputs(s, path), reason: `${path} is already on the host` };
    },
    async run(ctx: StepContext): Promise<SnippetOutputs> {
      const s = templateSnippet(config);
      checkCloudInitSize([{ label: s.file, data: s.json }]);
      const pve = await ctx.services.proxmox();
      const content = await storageContentTypes(pve, facts(ctx).pveNodes[0]!, storage, 'proxmox.storage.snippets');
      if (!content.includes('snippets')) {
        throw missingContentError(
          storage,
          'snippets',
          content,
          'proxmox.storage.snippets',
          'the VMs read their Ignition config from a snippet there (cicustom)',
        );
      }
      const path = snippetPath(facts(ctx).snippetsPath, s.file);
      const session = await connectPveSsh(ctx);
      try {
        const dir = posix.dirname(path);
        if (!(await session.stat(dir))) await session.run(sh`mkdir -p ${dir}`, { signal: ctx.signal });
        const st = await session.stat(path);
        if (st?.size === Buffer.byteLength(s.json) && (await session.readFile(path)).equals(Buffer.from(s.json))) {
          ctx.log(`${path} is already there`);
        } else {
          ctx.log(`Writing ${path} (${Buffer.byteLength(s.json)} bytes, Ignition ${s.hash12})`);
          await session.writeFile(path, s.json, 0o644);
          const after = await session.stat(path);
          if (after?.size !== Buffer.byteLength(s.json)) {
            throw new RemoteError(
              `The snippet ${path} has ${after ? `${after.size} bytes` : 'vanished'} after the upload (expected ${Buffer.byteLength(s.json)})`,
              {
                fix: `Check free space and permissions of ${dir} on the Proxmox host, then run again.`,
              },
            );
          }
        }
      } finally {
        await session.close();
      }
      return outputs(s, path);
    },
  };

  function outputs(s: ReturnType<typeof templateSnippet>, path: string): SnippetOutputs {
    return { volid: `${storage}:snippets/${s.file}`, path, ignitionHash: s.hash12, bytes: Buffer.byteLength(s.json) };
  }
}
