/**
 * Validation while typing: the draft is checked by the same schema and crossChecks that `up --config`
 * uses. Parts the user has not reached yet (the Proxmox block) are filled with a placeholder so only
 * the fields of the current screen report.
 */
import { ConfigSchema, type Config } from '../config/schema.js';
import { crossChecks, deepMerge, readPreset } from '../config/load.js';
import { mergeDraft, type Plain } from './state.js';

const PLACEHOLDER_PROXMOX = {
  url: 'https://placeholder.invalid:8006',
  tokenId: 'placeholder@pam!ui',
  tokenSecret: '00000000-0000-4000-8000-000000000000',
};

export interface DraftCheck {
  /** Dotted path → message, for paths under the prefixes asked for. */
  errors: Record<string, string>;
  /** The parsed config when the whole draft (with the placeholder) is valid. */
  config?: Config;
}

/** The draft with its preset merged under it (what resolveConfig validates, minus the environment). */
export function withPreset(draft: Plain): Plain {
  return typeof draft.preset === 'string' ? (deepMerge(readPreset(draft.preset), draft) as Plain) : draft;
}

export function checkDraft(draft: Plain, prefixes: string[], opts: { placeholderProxmox?: boolean } = {}): DraftCheck {
  let doc = withPreset(draft);
  if (opts.placeholderProxmox !== false)
    doc = mergeDraft(doc, {
      proxmox: { ...PLACEHOLDER_PROXMOX, ...(typeof doc.proxmox === 'object' && doc.proxmox ? (doc.proxmox as Plain) : {}) },
    });
  const errors: Record<string, string> = {};
  const keep = (p: string) => prefixes.some((x) => p === x || p.startsWith(x + '.') || x.startsWith(p + '.'));
  const parsed = ConfigSchema.safeParse(doc);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const path = i.path.map(String).join('.');
      if (keep(path) && !errors[path]) errors[path] = i.message;
    }
    return { errors };
  }
  for (const i of crossChecks(parsed.data)) {
    if (keep(i.path) && !errors[i.path])
      errors[i.path] = `${i.message}${i.expected ? `; expected ${i.expected}` : ''}${i.example ? ` (e.g. ${i.example})` : ''}`;
  }
  return { errors, config: Object.keys(errors).length ? undefined : parsed.data };
}
