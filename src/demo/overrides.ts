/**
 * Fitting the demo's config overrides to the user's layout. The demo puts every address on loopback,
 * including a control-plane VIP (127.0.50.10) — but only a layout that has a VIP gets one: a homelab
 * with one server must not turn into a kube-vip cluster just because it runs on the simulator.
 */
import { deepMerge, readPreset } from '../config/load.js';

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

export function fitDemoOverrides(overrides: Plain, doc: Plain): Plain {
  const nodes = isPlain(overrides.nodes) ? overrides.nodes : undefined;
  // The document may still name its preset without its contents (the UI's draft): look through it.
  const full = typeof doc.preset === 'string' ? (deepMerge(readPreset(doc.preset), doc) as Plain) : doc;
  const wantsVip = isPlain(full.nodes) && full.nodes.vip !== undefined && full.nodes.vip !== null && full.nodes.vip !== '';
  if (!nodes || nodes.vip === undefined || wantsVip) return overrides;
  const { vip: _dropped, ...rest } = nodes;
  return { ...overrides, nodes: rest };
}
