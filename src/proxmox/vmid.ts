/**
 * VMID allocation. Proxmox's /cluster/nextid does not reserve an id, so two creators can pick the same
 * one; the loser's create/clone fails with "VM N already exists" / "config file already exists".
 * `withFreeVmid` picks the lowest free id in the range, tries, and on a collision moves on.
 */
import { UserError } from '../errors.js';
import { isVmidTaken } from './errors.js';
import type { ProxmoxClient } from './types.js';

export async function withFreeVmid<T>(
  client: Pick<ProxmoxClient, 'freeVmid'>,
  range: { start: number; end: number },
  attempt: (vmid: number) => Promise<T>,
  opts: { exclude?: Iterable<number>; attempts?: number; log?: (line: string) => void } = {},
): Promise<{ vmid: number; result: T }> {
  const skip = new Set<number>(opts.exclude ?? []);
  const max = opts.attempts ?? 5;
  for (let i = 1; ; i++) {
    const vmid = await client.freeVmid(range, skip);
    if (vmid === null) {
      throw new UserError(`No free VM id left in ${range.start}–${range.end}`, {
        field: 'nodes.vmids',
        fix: 'Widen nodes.vmids (start/end) or remove unused VMs in that range.',
      });
    }
    try {
      return { vmid, result: await attempt(vmid) };
    } catch (err) {
      if (!isVmidTaken(err) || i >= max) throw err;
      opts.log?.(`VM id ${vmid} was taken meanwhile; trying the next free one`);
      skip.add(vmid);
    }
  }
}
