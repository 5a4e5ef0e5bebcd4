/** /nodes/{node}/qemu…: list, create, config (sync and async), pending, cloud-init dump; plus the disk and power handlers. */
import { HttpError } from '../auth.js';
import { LOCK_TIMEOUTS, sleep } from '../latency.js';
import { vmLockFile } from '../locks.js';
import type { SimVm } from '../state.js';
import { bool, int, str, type ApiRequest, type HandlerTable, type SimContext } from './context.js';
import { requireNode } from './cluster.js';
import { dumpCloudinit } from './cloudinit.js';
import { diskHandlers } from './qemu-disks.js';
import { powerHandlers, startVm } from './qemu-power.js';
import { CREATE, checkLock, configParams, forkDelay, getVm, now, user } from './vm-common.js';
import { prepareOptions, runDiskJobs } from './vm-config.js';

export { defaultGuestAddress } from './qemu-power.js';

async function applyConfigUpdate(ctx: SimContext, req: ApiRequest, vm: SimVm, log: (l: string) => void): Promise<void> {
  const route = ctx.schema.get('POST', '/nodes/{node}/qemu/{vmid}/config')!;
  const skiplock = bool(req, 'skiplock');
  await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
    checkLock(vm, skiplock);
    const digest = str(req, 'digest');
    if (digest && digest !== ctx.state.configDigest(vm))
      throw new Error('detected modified configuration - file changed by other user? Try again.\n');
    const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
    const { changes, jobs } = prepareOptions(ctx, route, vm.node, params, req.auth);
    for (const key of (str(req, 'delete') ?? '').split(/[,;\s]+/).filter(Boolean)) {
      if (Object.hasOwn(params, key))
        throw new HttpError(400, 'Parameter verification failed.', {
          delete: `you can't use '-${key}' and -delete ${key}' at the same time`,
        });
      delete vm.config[key];
    }
    Object.assign(vm.config, changes);
    Object.assign(vm.config, await runDiskJobs(ctx, vm.vmid, vm.node, jobs, log, sleep));
    for (const [k, v] of Object.entries(changes)) log(`update VM ${vm.vmid}: -${k} ${v}`);
  });
}

export const qemuHandlers: HandlerTable = {
  'GET /nodes/{node}/qemu': (ctx, req) => {
    const node = requireNode(ctx, req);
    if (!ctx.auth.canSee(req.auth)) return [];
    return [...ctx.state.vms.values()]
      .filter((vm) => vm.node === node)
      .map((vm) => ({
        vmid: vm.vmid,
        name: vm.config.name,
        status: vm.status,
        ...(vm.config.template ? { template: 1 } : {}),
        ...(vm.config.lock ? { lock: vm.config.lock } : {}),
        cpus: Number(vm.config.cores ?? 1),
        maxmem: Number(String(vm.config.memory ?? 512).replace(/^current=/, '')) * 1048576,
        uptime: vm.status === 'running' && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
        ...(vm.config.tags ? { tags: vm.config.tags } : {}),
      }));
  },

  'POST /nodes/{node}/qemu': async (ctx, req) => {
    const node = requireNode(ctx, req);
    const vmid = int(req, 'vmid')!;
    const route = ctx.schema.get(...CREATE)!;
    const params = configParams(req, [
      'node',
      'vmid',
      'start',
      'unique',
      'pool',
      'force',
      'archive',
      'storage',
      'live-restore',
      'bwlimit',
      'import-working-storage',
    ]);
    const emsg = `unable to create VM ${vmid} -`;
    const { changes, jobs } = prepareOptions(ctx, route, node, params, req.auth);
    const start = bool(req, 'start');
    // create_and_lock_config: before the worker forks, the config appears with "lock: create"
    let vm: SimVm;
    try {
      vm = await ctx.locks.with(vmLockFile(vmid), 'exclusive', ctx.latency.lockMs(5), () => {
        const existing = ctx.state.vms.get(vmid);
        if (existing) throw new Error(`VM ${vmid} already exists on node '${existing.node}'\n`);
        const created: SimVm = { vmid, node, status: 'stopped', generation: 0, config: { lock: 'create' } };
        ctx.state.vms.set(vmid, created);
        return created;
      });
    } catch (e) {
      throw new HttpError(500, `${emsg} ${(e as Error).message.replace(/\n$/, '')}`);
    }
    await forkDelay(ctx, node);
    const task = ctx.tasks.start(
      node,
      'qmcreate',
      String(vmid),
      user(req),
      async ({ log }) => {
        await ctx.locks.with(vmLockFile(vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.create), async () => {
          try {
            const disks = await runDiskJobs(ctx, vmid, node, jobs, log, (ms) => sleep(ms));
            const conf: Record<string, string | number> = { ...changes, ...disks };
            conf.boot ??= Object.keys(disks).find((k) => !/cloudinit/.test(disks[k]!))
              ? `order=${Object.keys(disks)
                  .filter((k) => !/cloudinit/.test(disks[k]!))
                  .join(';')}`
              : 'order=net0';
            conf.smbios1 ??= `uuid=${crypto.randomUUID()}`;
            conf.vmgenid ??= crypto.randomUUID();
            conf.meta = `creation-qemu=9.2.0,ctime=${now()}`;
            vm.config = conf;
          } catch (e) {
            for (const v of ctx.state.vmVolumes(vmid)) ctx.state.volumes.delete(v.volid);
            throw new Error(`${emsg} ${(e as Error).message}`);
          }
        });
        if (start) {
          log('Execute autostart');
          try {
            await startVm(ctx, vm, log, false);
          } catch (e) {
            log(`${(e as Error).message}`.replace(/\n$/, ''));
          }
        }
      },
      (t) => {
        // a failed create removes its config file
        if (t.exitstatus !== 'OK' && ctx.state.vms.get(vmid) === vm) {
          for (const v of ctx.state.vmVolumes(vmid)) ctx.state.volumes.delete(v.volid);
          ctx.state.vms.delete(vmid);
        }
      },
    );
    return task.upid;
  },

  'GET /nodes/{node}/qemu/{vmid}/config': (ctx, req) => {
    const vm = getVm(ctx, req);
    return { ...vm.config, digest: ctx.state.configDigest(vm) };
  },

  'GET /nodes/{node}/qemu/{vmid}/pending': (ctx, req) => {
    const vm = getVm(ctx, req);
    return Object.entries(vm.config).map(([key, value]) => ({ key, value }));
  },

  'PUT /nodes/{node}/qemu/{vmid}/config': async (ctx, req) => {
    const vm = getVm(ctx, req);
    try {
      await applyConfigUpdate(ctx, req, vm, () => {});
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    return null;
  },

  'POST /nodes/{node}/qemu/{vmid}/config': async (ctx, req) => {
    const vm = getVm(ctx, req);
    // option checks happen before the worker forks, as in qemu-server
    prepareOptionsDryRun(ctx, req, vm.node);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmconfig', String(vm.vmid), user(req), async ({ log }) => {
      await sleep(ctx.latency.ms('config', vm.node));
      await applyConfigUpdate(ctx, req, vm, log);
    });
    return task.upid;
  },

  'GET /nodes/{node}/qemu/{vmid}/cloudinit/dump': (ctx, req) => dumpCloudinit(getVm(ctx, req), str(req, 'type')!),

  ...diskHandlers,
  ...powerHandlers,
};

/** The pre-fork checks of POST …/config (option syntax, root-only options, cicustom). */
function prepareOptionsDryRun(ctx: SimContext, req: ApiRequest, node: string): void {
  const route = ctx.schema.get('POST', '/nodes/{node}/qemu/{vmid}/config')!;
  const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
  prepareOptions(ctx, route, node, params, req.auth);
}
