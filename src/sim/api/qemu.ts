/** /nodes/{node}/qemu…: create, config, clone, template, resize, power, destroy, agent, cloud-init. */
import { HttpError } from '../auth.js';
import { LOCK_TIMEOUTS, sleep } from '../latency.js';
import { storageLockFile, vmLockFile } from '../locks.js';
import { formatSize, parseSize } from '../schema/formats.js';
import type { SimVm } from '../state.js';
import { bool, int, str, type ApiRequest, type HandlerTable, type SimContext } from './context.js';
import { requireNode } from './cluster.js';
import { DRIVE_RE, newMac, parseDrive, prepareOptions, printDrive, readUserSnippet, runDiskJobs } from './vm-config.js';
import { dumpCloudinit, generateNocloud } from './cloudinit.js';

const CREATE = ['POST', '/nodes/{node}/qemu'] as const;
const now = (): number => Math.floor(Date.now() / 1000);

function getVm(ctx: SimContext, req: ApiRequest): SimVm {
  const node = requireNode(ctx, req);
  const vmid = int(req, 'vmid')!;
  const vm = ctx.state.vms.get(vmid);
  if (!vm || vm.node !== node) throw new HttpError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
  return vm;
}

function checkLock(vm: SimVm, skiplock?: boolean): void {
  if (vm.config.lock && !skiplock) throw new Error(`VM is locked (${vm.config.lock})\n`);
}

const user = (req: ApiRequest): string => req.auth?.authId ?? 'root@pam';

/** The POST → UPID part of a request that forks a worker. */
const forkDelay = (ctx: SimContext, node: string): Promise<void> => sleep(ctx.latency.ms('postUpid', node));

const configParams = (req: ApiRequest, skip: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.params)) {
    if (v === undefined || skip.includes(k)) continue;
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
};

function isoAgentEnabled(vm: SimVm): boolean {
  const a = String(vm.config.agent ?? '0');
  return /^(1|enabled=1)(,|$)/.test(a) || /(^|,)enabled=(1|on|yes|true)(,|$)/.test(a);
}

function vmDisks(vm: SimVm): Array<{ key: string; drive: Record<string, string | number> }> {
  const out: Array<{ key: string; drive: Record<string, string | number> }> = [];
  for (const [k, v] of Object.entries(vm.config)) {
    if (!DRIVE_RE.test(k)) continue;
    const d: Record<string, string | number> = {};
    String(v).split(',').forEach((p, i) => {
      const kv = /^([^=]+)=(.*)$/.exec(p);
      if (kv) d[kv[1]!] = kv[2]!;
      else if (i === 0) d.file = p;
    });
    out.push({ key: k, drive: d });
  }
  return out;
}

/** Default addresses the guest hooks report, from ipconfig0 (static) or a loopback "DHCP" pool. */
export function defaultGuestAddress(vm: { vmid: number; config: Record<string, string | number> }): { ip: string; prefix: number } {
  const ip = /(?:^|,)ip=(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(String(vm.config.ipconfig0 ?? ''));
  if (ip) return { ip: ip[1]!, prefix: Number(ip[2]) };
  return { ip: `127.${100 + Math.floor(vm.vmid / 65536) % 100}.${Math.floor(vm.vmid / 256) % 256}.${vm.vmid % 256 || 1}`, prefix: 8 };
}

async function applyConfigUpdate(ctx: SimContext, req: ApiRequest, vm: SimVm, log: (l: string) => void): Promise<void> {
  const route = ctx.schema.get('POST', '/nodes/{node}/qemu/{vmid}/config')!;
  const skiplock = bool(req, 'skiplock');
  await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
    checkLock(vm, skiplock);
    const digest = str(req, 'digest');
    if (digest && digest !== ctx.state.configDigest(vm)) throw new Error('detected modified configuration - file changed by other user? Try again.\n');
    const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
    const { changes, jobs } = prepareOptions(ctx, route, params, req.auth);
    for (const key of (str(req, 'delete') ?? '').split(/[,;\s]+/).filter(Boolean)) {
      if (Object.hasOwn(params, key)) throw new HttpError(400, 'Parameter verification failed.', { delete: `you can't use '-${key}' and -delete ${key}' at the same time` });
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
        vmid: vm.vmid, name: vm.config.name, status: vm.status, ...(vm.config.template ? { template: 1 } : {}), ...(vm.config.lock ? { lock: vm.config.lock } : {}),
        cpus: Number(vm.config.cores ?? 1), maxmem: Number(String(vm.config.memory ?? 512).replace(/^current=/, '')) * 1048576, uptime: vm.status === 'running' && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
        ...(vm.config.tags ? { tags: vm.config.tags } : {}),
      }));
  },

  'POST /nodes/{node}/qemu': async (ctx, req) => {
    const node = requireNode(ctx, req);
    const vmid = int(req, 'vmid')!;
    const route = ctx.schema.get(...CREATE)!;
    const params = configParams(req, ['node', 'vmid', 'start', 'unique', 'pool', 'force', 'archive', 'storage', 'live-restore', 'bwlimit', 'import-working-storage']);
    const emsg = `unable to create VM ${vmid} -`;
    const { changes, jobs } = prepareOptions(ctx, route, params, req.auth);
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
            conf.boot ??= Object.keys(disks).find((k) => !/cloudinit/.test(disks[k]!)) ? `order=${Object.keys(disks).filter((k) => !/cloudinit/.test(disks[k]!)).join(';')}` : 'order=net0';
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
    prepareOptionsDryRun(ctx, req);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmconfig', String(vm.vmid), user(req), async ({ log }) => {
      await sleep(ctx.latency.ms('config', vm.node));
      await applyConfigUpdate(ctx, req, vm, log);
    });
    return task.upid;
  },

  'POST /nodes/{node}/qemu/{vmid}/clone': async (ctx, req) => {
    const src = getVm(ctx, req);
    const node = src.node;
    const newid = int(req, 'newid')!;
    const targetArg = str(req, 'target');
    const target = targetArg && targetArg !== node && targetArg !== 'localhost' ? targetArg : undefined;
    const storageArg = str(req, 'storage');
    const running = src.status === 'running';
    // qemu-server's load_and_check: run once before forking (errors answer the request) and again in the
    // worker under the locks (errors fail the task)
    const loadAndCheck = (): { full: boolean; disks: Array<{ key: string; drive: Record<string, string | number> }> } => {
      if (target && !ctx.state.hasNode(target)) throw new Error(`no such cluster node '${target}'\n`);
      if (storageArg) {
        const st = ctx.state.storages.get(storageArg);
        if (!st) throw new Error(`storage '${storageArg}' does not exist\n`);
        if (target && !st.shared) throw new Error(`can't clone to non-shared storage '${storageArg}'\n`);
      }
      if (!ctx.state.vms.has(src.vmid)) throw new Error(`Configuration file 'nodes/${node}/qemu-server/${src.vmid}.conf' does not exist\n`);
      checkLock(src);
      if ((src.status === 'running') !== running) throw new Error('unexpected state change\n');
      const full = bool(req, 'full') ?? !src.config.template;
      if (storageArg && !full) throw new Error("parameter 'storage' not allowed for linked clones\n");
      if (str(req, 'format') && !full) throw new Error("parameter 'format' not allowed for linked clones\n");
      const disks = vmDisks(src).filter((d) => d.drive.media !== 'cdrom' || /cloudinit/.test(String(d.drive.file)));
      for (const d of disks) {
        const file = String(d.drive.file);
        if (!full && !/cloudinit/.test(file) && !/:base-\d+-disk-\d+$/.test(file)) throw new Error(`Linked clone feature is not supported for drive '${d.key}'\n`);
      }
      const shared = disks.every((d) => ctx.state.storages.get(String(d.drive.file).split(':')[0]!)?.shared);
      if (target && !shared) throw new Error(`can't clone VM to node '${target}' (VM uses local storage)\n`);
      if (ctx.state.vms.has(newid)) throw new Error(`unable to create VM ${newid}: config file already exists\n`);
      return { full, disks };
    };
    try {
      loadAndCheck();
    } catch (e) {
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    const name = str(req, 'name') ?? `Copy-of-VM-${src.config.name ?? src.vmid}`;
    const dstNode = target ?? node;
    await forkDelay(ctx, node);
    let created = false;
    const task = ctx.tasks.start(node, 'qmclone', String(src.vmid), user(req), async ({ log }) => {
      // source: shared lock when stopped (exclusive when running), then the target: exclusive; 1 s each,
      // held by the worker for the whole clone
      await ctx.locks.with(vmLockFile(src.vmid), running ? 'exclusive' : 'shared', ctx.latency.lockMs(LOCK_TIMEOUTS.cloneSource), () =>
        ctx.locks.with(vmLockFile(newid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.cloneTarget), async () => {
          const { full, disks } = loadAndCheck();
          const conf: Record<string, string | number> = {};
          for (const [k, v] of Object.entries(src.config)) {
            if (k === 'template' || k === 'lock' || DRIVE_RE.test(k) || /^unused\d+$/.test(k)) continue;
            conf[k] = /^net\d+$/.test(k) ? String(v).replace(/=([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}/, `=${newMac()}`) : v;
          }
          conf.smbios1 = `uuid=${crypto.randomUUID()}`;
          if (conf.vmgenid) conf.vmgenid = crypto.randomUUID();
          conf.name = name;
          const desc = str(req, 'description');
          if (desc) conf.description = desc;
          // the temporary config ("lock: clone") appears at once
          const vm: SimVm = { vmid: newid, node: dstNode, status: 'stopped', generation: 0, config: { lock: 'clone' } };
          ctx.state.vms.set(newid, vm);
          created = true;
          const newVols: string[] = [];
          try {
            for (const { key, drive } of vmDisks(src)) {
              const file = String(drive.file);
              if (drive.media === 'cdrom' && !/cloudinit/.test(file)) {
                conf[key] = printDrive(drive);
                continue;
              }
              if (!disks.some((d) => d.key === key)) continue;
              const [storeId, volname] = file.split(':') as [string, string];
              const dstStore = full && storageArg ? storageArg : storeId;
              if (/cloudinit/.test(file)) {
                const volid = `${dstStore}:vm-${newid}-cloudinit`;
                ctx.state.volumes.set(volid, { volid, storage: dstStore, node: dstNode, content: 'images', format: 'raw', size: 4 * 1024 * 1024, vmid: newid, ctime: now() });
                newVols.push(volid);
                conf[key] = printDrive({ ...drive, file: volid });
                continue;
              }
              const srcVol = ctx.state.volumes.get(file);
              const size = srcVol?.size ?? parseSize(String(drive.size ?? '0')) ?? 0;
              log(`create ${full ? 'full' : 'linked'} clone of drive ${key} (${file})`);
              const dstName = await ctx.locks.with(storageLockFile(dstStore), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.storage), async () => {
                await sleep(ctx.latency.ms('storageLockHold', node));
                const n = ctx.state.nextDiskName(dstStore, newid);
                const volid = full ? `${dstStore}:${n}` : `${dstStore}:${volname}/${n}`;
                ctx.state.volumes.set(volid, { volid, storage: dstStore, node: dstNode, content: 'images', format: 'raw', size, vmid: newid, ctime: now(), ...(full ? {} : { base: file }) });
                newVols.push(volid);
                return n;
              });
              await sleep(full ? ctx.latency.ms('fullClone', node, size / 4 / 1024 ** 3 / 0.3) : ctx.latency.ms('linkedClone', node));
              log(`  Logical volume "${dstName}" created.`);
              const volid = newVols[newVols.length - 1]!;
              conf[key] = printDrive({ ...drive, file: volid, size: formatSize(size) });
              vm.config = { ...conf, lock: 'clone' };
            }
            vm.config = { ...conf };
          } catch (e) {
            for (const v of newVols) ctx.state.volumes.delete(v);
            ctx.state.vms.delete(newid);
            created = false;
            throw new Error(`clone failed: ${(e as Error).message}`);
          }
        }),
      );
    }, (t) => {
      // an injected task fault (or a crash) must not leave the temporary config behind
      if (t.exitstatus !== 'OK' && created) {
        for (const v of ctx.state.vmVolumes(newid)) ctx.state.volumes.delete(v.volid);
        ctx.state.vms.delete(newid);
      }
    });
    return task.upid;
  },

  'POST /nodes/{node}/qemu/{vmid}/template': async (ctx, req) => {
    const vm = getVm(ctx, req);
    // qemu-server: under the config lock, check, write "template: 1", then fork the worker, which keeps
    // the lock while the disks become base volumes
    let release: () => void;
    try {
      release = await ctx.locks.acquire(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config));
    } catch (e) {
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    try {
      checkLock(vm);
      if (vm.config.template) throw new Error("you can't convert a template to a template\n");
      if (vm.status === 'running') throw new Error("you can't convert a VM to template if VM is running\n");
      vm.config.template = 1;
    } catch (e) {
      release();
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    const task = ctx.tasks.start(
      vm.node,
      'qmtemplate',
      String(vm.vmid),
      user(req),
      async ({ log }) => {
        await sleep(ctx.latency.ms('template', vm.node));
        for (const { key, drive } of vmDisks(vm)) {
          const file = String(drive.file);
          if (drive.media === 'cdrom' || /cloudinit/.test(file)) continue;
          const vol = ctx.state.volumes.get(file);
          if (!vol) continue;
          const baseId = file.replace(/:vm-(\d+)-disk-(\d+)$/, ':base-$1-disk-$2');
          ctx.state.volumes.delete(file);
          ctx.state.volumes.set(baseId, { ...vol, volid: baseId });
          log(`  Renamed "${file.split(':')[1]}" to "${baseId.split(':')[1]}" in volume group "pve"`);
          vm.config[key] = printDrive({ ...drive, file: baseId });
        }
      },
      () => release(),
    );
    return task.upid;
  },

  'PUT /nodes/{node}/qemu/{vmid}/resize': async (ctx, req) => {
    const vm = getVm(ctx, req);
    const disk = str(req, 'disk')!;
    const sizeArg = str(req, 'size')!;
    if (vm.config.lock && !bool(req, 'skiplock')) throw new HttpError(500, `VM is locked (${vm.config.lock})`);
    const value = vm.config[disk];
    if (value === undefined) throw new HttpError(500, `disk '${disk}' does not exist`);
    const route = ctx.schema.get(...CREATE)!;
    const drive = parseDrive(route, disk, String(value));
    if (drive.media === 'cdrom' || /cloudinit/.test(String(drive.file))) throw new HttpError(500, "you can't resize a cdrom");
    if (vm.config.template) throw new HttpError(500, "you can't resize a disk of a template");
    const vol = ctx.state.volumes.get(String(drive.file));
    const current = vol?.size ?? parseSize(String(drive.size ?? '0')) ?? 0;
    const m = /^(\+)?(.+)$/.exec(sizeArg)!;
    const amount = parseSize(m[2]!);
    if (amount === undefined) throw new HttpError(500, `invalid size '${sizeArg}'`);
    const newSize = m[1] ? current + amount : amount;
    if (newSize < current) throw new HttpError(500, "shrinking disks is not supported");
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'resize', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
        await sleep(ctx.latency.ms('resize', vm.node));
        if (vol) vol.size = newSize;
        vm.config[disk] = printDrive({ ...drive, size: formatSize(newSize) });
        log(`  Size of logical volume pve/${String(drive.file).split(':')[1]} changed from ${formatSize(current)} to ${formatSize(newSize)}.`);
      });
    });
    return task.upid;
  },

  'GET /nodes/{node}/qemu/{vmid}/status/current': (ctx, req) => {
    const vm = getVm(ctx, req);
    return {
      vmid: vm.vmid, name: vm.config.name, status: vm.status, qmpstatus: vm.status, ...(vm.config.lock ? { lock: vm.config.lock } : {}),
      ...(vm.config.template ? { template: 1 } : {}), agent: isoAgentEnabled(vm) ? 1 : 0, cpus: Number(vm.config.cores ?? 1),
      maxmem: Number(String(vm.config.memory ?? 512).replace(/^current=/, '')) * 1048576, uptime: vm.status === 'running' && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
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
      });
    });
    return task.upid;
  },

  'GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces': (ctx, req) => agentInterfaces(ctx, req),
  'POST /nodes/{node}/qemu/{vmid}/agent': (ctx, req) => {
    const cmd = str(req, 'command');
    if (cmd !== 'network-get-interfaces' && cmd !== 'ping') throw new HttpError(501, `Method not implemented in simulator: agent command '${cmd}'`);
    const r = agentInterfaces(ctx, req);
    return cmd === 'ping' ? { result: {} } : r;
  },

  'GET /nodes/{node}/qemu/{vmid}/cloudinit/dump': (ctx, req) => dumpCloudinit(getVm(ctx, req), str(req, 'type')!),
};

/** vm_start: under the config lock; the cloud-init drive is regenerated (snippets read) at every start. */
async function startVm(ctx: SimContext, vm: SimVm, log: (l: string) => void, skiplock?: boolean): Promise<void> {
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
  if (!isoAgentEnabled(vm)) throw new HttpError(500, 'No QEMU guest agent configured');
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

/** The pre-fork checks of POST …/config (option syntax, root-only options, cicustom). */
function prepareOptionsDryRun(ctx: SimContext, req: ApiRequest): void {
  const route = ctx.schema.get('POST', '/nodes/{node}/qemu/{vmid}/config')!;
  const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
  prepareOptions(ctx, route, params, req.auth);
}
