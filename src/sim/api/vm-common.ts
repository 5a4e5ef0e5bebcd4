/** Helpers shared by the /nodes/{node}/qemu… handlers. */
import { HttpError } from '../auth.js';
import { sleep } from '../latency.js';
import type { SimVm } from '../state.js';
import { int, type ApiRequest, type SimContext } from './context.js';
import { requireNode } from './cluster.js';
import { DRIVE_RE } from './vm-config.js';

export const CREATE = ['POST', '/nodes/{node}/qemu'] as const;
export const now = (): number => Math.floor(Date.now() / 1000);

export function getVm(ctx: SimContext, req: ApiRequest): SimVm {
  const node = requireNode(ctx, req);
  const vmid = int(req, 'vmid')!;
  const vm = ctx.state.vms.get(vmid);
  if (!vm || vm.node !== node) throw new HttpError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
  return vm;
}

export function checkLock(vm: SimVm, skiplock?: boolean): void {
  if (vm.config.lock && !skiplock) throw new Error(`VM ${vm.vmid} is locked (${vm.config.lock})\n`);
}

export const user = (req: ApiRequest): string => req.auth?.authId ?? 'root@pam';

/** The POST → UPID part of a request that forks a worker. */
export const forkDelay = (ctx: SimContext, node: string): Promise<void> => sleep(ctx.latency.ms('postUpid', node));

export const configParams = (req: ApiRequest, skip: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.params)) {
    if (v === undefined || skip.includes(k)) continue;
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
};

export function isAgentEnabled(vm: SimVm): boolean {
  const a = String(vm.config.agent ?? '0');
  return /^(1|enabled=1)(,|$)/.test(a) || /(^|,)enabled=(1|on|yes|true)(,|$)/.test(a);
}

export function vmDisks(vm: SimVm): Array<{ key: string; drive: Record<string, string | number> }> {
  const out: Array<{ key: string; drive: Record<string, string | number> }> = [];
  for (const [k, v] of Object.entries(vm.config)) {
    if (!DRIVE_RE.test(k)) continue;
    const d: Record<string, string | number> = {};
    String(v)
      .split(',')
      .forEach((p, i) => {
        const kv = /^([^=]+)=(.*)$/.exec(p);
        if (kv) d[kv[1]!] = kv[2]!;
        else if (i === 0) d.file = p;
      });
    out.push({ key: k, drive: d });
  }
  return out;
}
