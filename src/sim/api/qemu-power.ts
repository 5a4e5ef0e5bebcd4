/** VM power and guest: status, start (with cloud-init regeneration and the guest hooks), shutdown/stop, destroy, guest agent. */
import { HttpError } from '../auth.js';
import { LOCK_TIMEOUTS, sleep } from '../latency.js';
import { vmLockFile } from '../locks.js';
import type { SimVm } from '../state.js';
import { bool, str, type ApiRequest, type HandlerTable, type SimContext } from './context.js';
import { generateNocloud } from './cloudinit.js';
import { checkLock, forkDelay, getVm, isAgentEnabled, user, vmDisks } from './vm-common.js';
import { readUserSnippet } from './vm-config.js';

/** Default addresses the guest hooks report, from ipconfig0 (static) or a loopback "DHCP" pool. */
export function defaultGuestAddress(vm: { vmid: number; config: Record<string, string | number> }): { ip: string; prefix: number } {
  const ip = /(?:^|,)ip=(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(String(vm.config.ipconfig0 ?? ''));
  if (ip) return { ip: ip[1]!, prefix: Number(ip[2]) };
  return { ip: `127.${100 + (Math.floor(vm.vmid / 65536) % 100)}.${Math.floor(vm.vmid / 256) % 256}.${vm.vmid % 256 || 1}`, prefix: 8 };
}

export const powerHandlers: HandlerTable = {
  'GET /nodes/{node}/qemu/{vmid}/status/current': (ctx, req) => {
    const vm = getVm(ctx, req);
    const running = vm.status === 'running';
    const maxdisk = ctx.state
      .vmVolumes(vm.vmid)
      .filter((v) => !/cloudinit/.test(v.volid))
      .reduce((a, v) => a + v.size, 0);
    return {
      vmid: vm.vmid,
      name: vm.config.name,
      status: vm.status,
      qmpstatus: vm.status,
      ...(vm.config.lock ? { lock: vm.config.lock } : {}),
      ...(vm.config.template ? { template: 1 } : {}),
      ...(vm.config.tags ? { tags: vm.config.tags } : {}),
      agent: isAgentEnabled(vm) ? 1 : 0,
      cpus: Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1),
      maxmem: Number(String(vm.config.memory ?? 512).replace(/^current=/, '')) * 1048576,
      maxdisk,
      uptime: running && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
      cpu: running ? 0.02 : 0,
      mem: running ? 512 * 1048576 : 0,
      disk: 0,
      diskread: 0,
      diskwrite: 0,
      netin: 0,
      netout: 0,
      ...(running
        ? { pid: 100000 + vm.vmid, 'running-qemu': '9.2.0', 'running-machine': 'pc-i440fx-9.2+pve1', serial: vm.config.serial0 ? 1 : 0 }
        : {}),
      ha: { managed: 0 },
    };
  },

  'POST /nodes/{node}/qemu/{vmid}/status/start': async (ctx, req) => {
    const vm = getVm(ctx, req);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmstart', String(vm.vmid), user(req), ({ log }) => startVm(ctx, vm, log, bool(req, 'skiplock')));
    return task.upid;
  },

  'POST /nodes/{node}/qemu/{vmid}/status/shutdown': (ctx, req) => powerOff(ctx, req, 'qmshutdown'),
  'POST /nodes/{node}/qemu/{vmid}/status/stop': (ctx, req) => powerOff(ctx, req, 'qmstop'),

  'DELETE /nodes/{node}/qemu/{vmid}': async (ctx, req) => {
    const vm = getVm(ctx, req);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmdestroy', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
        checkLock(vm, bool(req, 'skiplock'));
        if (vm.status === 'running') throw new Error(`VM ${vm.vmid} is running - destroy failed\n`);
        for (const vol of ctx.state.vmVolumes(vm.vmid)) {
          const users = [...ctx.state.volumes.values()].filter((v) => v.base === vol.volid);
          if (users.length) throw new Error(`base volume '${vol.volid.split(':')[1]}' is still in use by linked cloned\n`);
        }
        await sleep(ctx.latency.ms('destroy', vm.node));
        for (const vol of ctx.state.vmVolumes(vm.vmid)) {
          ctx.state.volumes.delete(vol.volid);
          log(`  Logical volume "${vol.volid.split(':')[1]}" successfully removed.`);
        }
        ctx.state.vms.delete(vm.vmid);
        ctx.guest.destroyed?.({ node: vm.node, vmid: vm.vmid });
      });
    });
    return task.upid;
  },

  'GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces': (ctx, req) => agentInterfaces(ctx, req),
  'POST /nodes/{node}/qemu/{vmid}/agent': (ctx, req) => {
    const cmd = str(req, 'command');
    if (cmd !== 'network-get-interfaces' && cmd !== 'ping')
      throw new HttpError(501, `Method not implemented in simulator: agent command '${cmd}'`);
    const r = agentInterfaces(ctx, req);
    return cmd === 'ping' ? { result: {} } : r;
  },
};

/** vm_start: under the config lock; the cloud-init drive is regenerated (snippets read) at every start. */
export async function startVm(ctx: SimContext, vm: SimVm, log: (l: string) => void, skiplock?: boolean): Promise<void> {
  await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
    if (!ctx.state.vms.has(vm.vmid)) throw new Error(`Configuration file 'nodes/${vm.node}/qemu-server/${vm.vmid}.conf' does not exist\n`);
    if (vm.config.template) throw new Error("you can't start a vm if it's a template\n");
    checkLock(vm, skiplock);
    if (vm.status === 'running') throw new Error(`VM ${vm.vmid} already running\n`);
    for (const [k, v] of Object.entries(vm.config)) {
      if (!/^net\d+$/.test(k)) continue;
      const bridge = /(?:^|,)bridge=([^,]+)/.exec(String(v))?.[1];
      if (bridge && !ctx.state.bridges.includes(bridge)) throw new Error(`bridge '${bridge}' does not exist\n`);
    }
    if (vmDisks(vm).some((d) => /cloudinit/.test(String(d.drive.file)))) {
      generateNocloud(ctx, vm);
      log('generating cloud-init ISO');
    }
    const nics = Object.keys(vm.config).filter((k) => /^net\d+$/.test(k)).length;
    await sleep(ctx.latency.ms('start', vm.node, 0.45 * Math.max(0, nics - 1)));
    vm.status = 'running';
    vm.startedAt = Date.now();
    vm.agent = undefined;
    const generation = ++vm.generation;
    const userData = readUserSnippet(ctx, vm);
    const booting = ctx.guest
      .boot({ node: vm.node, vmid: vm.vmid, name: String(vm.config.name ?? ''), config: { ...vm.config }, userData })
      .then((r) => {
        if (vm.generation === generation && vm.status === 'running') vm.agent = r.interfaces;
      })
      .catch(() => {});
    ctx.track(booting);
  });
}

function agentInterfaces(ctx: SimContext, req: ApiRequest): { result: unknown } {
  const vm = getVm(ctx, req);
  if (!isAgentEnabled(vm)) throw new HttpError(500, 'No QEMU guest agent configured');
  if (vm.status !== 'running') throw new HttpError(500, `VM ${vm.vmid} is not running`);
  if (!vm.agent) throw new HttpError(500, 'QEMU guest agent is not running');
  return { result: vm.agent };
}

async function powerOff(ctx: SimContext, req: ApiRequest, type: 'qmshutdown' | 'qmstop'): Promise<string> {
  const vm = getVm(ctx, req);
  await forkDelay(ctx, vm.node);
  const task = ctx.tasks.start(vm.node, type, String(vm.vmid), user(req), async () => {
    await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
      checkLock(vm, bool(req, 'skiplock'));
      if (vm.status !== 'running') throw new Error(`VM ${vm.vmid} not running\n`);
      await sleep(ctx.latency.ms(type === 'qmstop' ? 'stop' : 'shutdown', vm.node));
      vm.status = 'stopped';
      vm.agent = undefined;
      vm.startedAt = undefined;
      vm.generation++;
      if (ctx.guest.stop) ctx.track(ctx.guest.stop({ node: vm.node, vmid: vm.vmid, name: String(vm.config.name ?? '') }).catch(() => {}));
    });
  });
  return task.upid;
}
