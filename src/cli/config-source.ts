/** The config a command works on: --config FILE and/or --preset NAME, plus overrides (--demo). */
import type { Config } from '../config/schema.js';
import { loadConfigFile, parseYamlText, resolveConfig } from '../config/load.js';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { abs } from './args.js';

export interface ConfigArgs {
  config?: string;
  preset?: string;
  /** Deep-merged over the user's config (the demo's proxmox block). */
  overrides?: Record<string, unknown> | ((doc: Record<string, unknown>) => Record<string, unknown>);
  /** When neither --config nor --preset is given (e.g. "homelab" for --demo). */
  defaultPreset?: string;
}

export function loadCliConfig(args: ConfigArgs, env: NodeJS.ProcessEnv, cwd: string): { config: Config; source: string } {
  const opts = { env, overrides: args.overrides };
  if (args.config) {
    const file = abs(args.config, cwd);
    if (!args.preset) return { config: loadConfigFile(file, opts), source: file };
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`Cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code}`, {
        fix: 'Pass an existing YAML file with --config FILE.',
      });
    }
    const raw = parseYamlText(text, file);
    return { config: resolveConfig({ ...raw, preset: args.preset }, { ...opts, source: file }), source: file };
  }
  const preset = args.preset ?? args.defaultPreset;
  if (!preset)
    throw new UserError('No config given', {
      fix: 'Pass --config FILE (see docs/config.md), or --preset NAME with the proxmox settings in the environment.',
    });
  return { config: resolveConfig({ preset }, { ...opts, source: `preset ${preset}` }), source: `preset ${preset}` };
}

/**
 * The cluster a config file names (cluster.name, or its preset's), without the rest of the config:
 * for read-only commands (`status`) that need no credentials.
 */
export async function clusterNameOf(file: string): Promise<string> {
  const [{ deepMerge, readPreset }, { ClusterSchema }] = await Promise.all([import('../config/load.js'), import('../config/schema.js')]);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code}`, {
      fix: 'Pass an existing YAML file with --config FILE.',
    });
  }
  const raw = parseYamlText(text, file);
  const doc = (typeof raw.preset === 'string' ? deepMerge(readPreset(raw.preset), raw) : raw) as { cluster?: { name?: unknown } };
  const parsed = ClusterSchema.shape.name.safeParse(doc.cluster?.name);
  if (!parsed.success) {
    throw new UserError(
      `${file}: cluster.name ${doc.cluster?.name === undefined ? 'is missing' : (parsed.error.issues[0]?.message ?? 'is not valid')}`,
      {
        field: 'cluster.name',
        fix: 'Set cluster.name (e.g. "cluster: { name: homelab }") or a preset, or pass --cluster NAME.',
      },
    );
  }
  return parsed.data;
}
