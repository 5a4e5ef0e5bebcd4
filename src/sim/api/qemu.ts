/** /nodes/{node}/qemu…: create, config, clone, template, resize, power, destroy, agent, cloud-init. */
import { HttpError } from '../auth.js';
import { LOCK_TIMEOUTS, sleep } from '../latency.js';
import { storageLockFile, vmLockFile } from '../locks.js';
import { formatSize, parseSize } from '../schema/formats.js';
import type { SimVm } from '../state.js';
import { bool, int, str, type ApiRequest, type HandlerTable, type SimContext } from './context.js';
import { requireNode } from './cluster.js';
import { DRIVE_RE, newMac, parseDrive, prepareOptions, printDrive, readUserSnippet, runDiskJobs, checkCicustom } from './vm-config.js';

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

function generatedUserData(vm: SimVm): string {
  const lines = ['#cloud-config', `hostname: ${vm.config.name ?? `VM${vm.vmid}`}`, 'manage_etc_hosts: true', 'fqdn: ' + (vm.config.name ?? `VM${vm.vmid}`)];
  if (vm.config.ciuser) lines.push(`user: ${vm.config.ciuser}`);
  if (vm.config.sshkeys) {
    lines.push('ssh_authorized_keys:');
    for (const k of decodeURIComponent(String(vm.config.sshkeys)).split('\n').filter(Boolean)) lines.push(`  - ${k}`);
  }
  lines.push('chpasswd:', '  expire: False', 'users:', '  - default', 'package_upgrade: true');
  return lines.join('\n') + '\n';
}

function networkData(vm: SimVm): string {
  const lines = ['version: 1', 'config:'];
  for (const [k, v] of Object.entries(vm.config)) {
    const m = /^net(\d+)$/.exec(k);
    if (!m) continue;
    const mac = /=([0-9A-Fa-f:]{17})/.exec(String(v))?.[1]?.toLowerCase();
    lines.push('    - type: physical', `      name: eth${m[1]}`, `      mac_address: '${mac}'`, '      subnets:');
    const ipc = String(vm.config[`ipconfig${m[1]}`] ?? '');
    const ip = /(?:^|,)ip=([^,]+)/.exec(ipc)?.[1];
    const gw = /(?:^|,)gw=([^,]+)/.exec(ipc)?.[1];
    if (ip && ip !== 'dhcp') {
      const [addr, prefix] = ip.split('/');
      const mask = prefix ? [0, 8, 16, 24].map((s) => (((0xffffffff << (32 - Number(prefix))) >>> 0) >>> (24 - s)) & 255).join('.') : '255.255.255.0';
      lines.push('      - type: static', `        address: '${addr}'`, `        netmask: '${mask}'`, ...(gw ? [`        gateway: '${gw}'`] : []));
    } else {
      lines.push('      - type: dhcp4');
    }
  }
  if (vm.config.nameserver || vm.config.searchdomain) {
    lines.push('    - type: nameserver', '      address:', ...String(vm.config.nameserver ?? '').split(/\s+/).filter(Boolean).map((a) => `      - '${a}'`));
    if (vm.config.searchdomain) lines.push('      search:', `      - '${vm.config.searchdomain}'`);
  }
  return lines.join('\n') + '\n';
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
  await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
    checkLock(vm, skiplock);
    const digest = str(req, 'digest');
    if (digest && digest !== ctx.state.configDigest(vm)) throw new Error('detected modified configuration - file changed by other user? Try again.\n');
    const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
    const { changes, jobs } = prepareOptions(ctx, route, vm.vmid, vm.node, params, req.auth);
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
    const existing = ctx.state.vms.get(vmid);
    if (existing) throw new HttpError(500, `VM ${vmid} already exists on node '${existing.node}'`);
    const route = ctx.schema.get(...CREATE)!;
    const params = configParams(req, ['node', 'vmid', 'start', 'unique', 'pool', 'force', 'archive', 'storage', 'live-restore', 'bwlimit', 'import-working-storage']);
    const { changes, jobs } = prepareOptions(ctx, route, vmid, node, params, req.auth);
    const start = bool(req, 'start');
    await forkDelay(ctx, node);
    const task = ctx.tasks.start(node, 'qmcreate', String(vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.create), async () => {
        if (ctx.state.vms.has(vmid)) throw new Error(`unable to create VM ${vmid}: config file already exists\n`);
        const vm: SimVm = { vmid, node, status: 'stopped', generation: 0, config: { lock: 'create', ...changes } };
        ctx.state.vms.set(vmid, vm);
        try {
          const disks = await ctx.locks.with(storageLockFile(jobs[0]?.storage ?? 'local-lvm'), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.storage), () =>
            runDiskJobs(ctx, vmid, node, jobs, log, (ms) => sleep(ms)),
          );
          Object.assign(vm.config, disks);
          vm.config.vmgenid ??= crypto.randomUUID();
          vm.config.smbios1 ??= `uuid=${crypto.randomUUID()}`;
          vm.config.meta ??= `creation-qemu=9.2.0,ctime=${now()}`;
          delete vm.config.lock;
        } catch (e) {
          for (const v of ctx.state.vmVolumes(vmid)) ctx.state.volumes.delete(v.volid);
          ctx.state.vms.delete(vmid);
          throw e;
        }
      });
      if (start) log('start after create is not simulated; start the VM with status/start');
    });
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
    prepareOptionsDryRun(ctx, req, vm);
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
    const target = str(req, 'target') ?? node;
    if (!ctx.state.hasNode(target)) throw new HttpError(500, `no such cluster node '${target}'`);
    const other = ctx.state.vms.get(newid);
    if (other) throw new HttpError(500, `VM ${newid} already exists on node '${other.node}'`);
    const isTemplate = !!src.config.template;
    const full = bool(req, 'full') ?? !isTemplate;
    if (!full && str(req, 'storage')) throw new HttpError(500, "parameter 'storage' not allowed for linked clones");
    if (!full && str(req, 'format')) throw new HttpError(500, "parameter 'format' not allowed for linked clones");
    const disks = vmDisks(src).filter((d) => d.drive.media !== 'cdrom' || /cloudinit/.test(String(d.drive.file)));
    if (!full && !isTemplate) {
      const first = disks.find((d) => !/cloudinit/.test(String(d.drive.file)));
      throw new HttpError(500, `Linked clone feature is not supported for drive '${first?.key ?? 'scsi0'}'`);
    }
    if (target !== node) {
      const local = disks.some((d) => !ctx.state.storages.get(String(d.drive.file).split(':')[0]!)?.shared);
      if (local) throw new HttpError(500, `can't clone VM to node '${target}' (VM uses local storage)`);
    }
    const name = str(req, 'name') ?? `Copy-of-VM-${src.config.name ?? src.vmid}`;
    // source: shared lock if stopped (exclusive if running); target: exclusive; both with a 1 s timeout, held by the worker
    let releaseSrc: () => void;
    let releaseDst: () => void;
    try {
      releaseSrc = await ctx.locks.acquire(vmLockFile(src.vmid), src.status === 'running' ? 'exclusive' : 'shared', ctx.latency.scale(LOCK_TIMEOUTS.cloneSource));
    } catch (e) {
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    try {
      releaseDst = await ctx.locks.acquire(vmLockFile(newid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.cloneTarget));
    } catch (e) {
      releaseSrc();
      throw new HttpError(500, (e as Error).message.replace(/\n$/, ''));
    }
    // the checks qemu-server makes after taking the locks
    const lockErr = src.config.lock ? `VM is locked (${src.config.lock})` : ctx.state.vms.has(newid) ? `unable to create VM ${newid}: config file already exists` : undefined;
    if (lockErr) {
      releaseDst();
      releaseSrc();
      throw new HttpError(500, lockErr);
    }
    const vm: SimVm = { vmid: newid, node: target, status: 'stopped', generation: 0, config: { lock: 'clone' } };
    ctx.state.vms.set(newid, vm);
    await forkDelay(ctx, node);
    const task = ctx.tasks.start(
      node,
      'qmclone',
      String(src.vmid),
      user(req),
      async ({ log }) => {
        log(`create ${full ? 'full' : 'linked'} clone of drive ${disks.map((d) => d.key).join(', ')}`);
        const conf: Record<string, string | number> = {};
        for (const [k, v] of Object.entries(src.config)) {
          if (['template', 'lock', 'vmgenid', 'smbios1', 'meta'].includes(k) || DRIVE_RE.test(k)) continue;
          conf[k] = v;
        }
        for (const [k, v] of Object.entries(conf)) if (/^net\d+$/.test(k)) conf[k] = String(v).replace(/=([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}/, `=${newMac()}`);
        conf.name = name;
        const desc = str(req, 'description');
        if (desc !== undefined) conf.description = desc;
        const storageOverride = str(req, 'storage');
        for (const { key, drive } of vmDisks(src)) {
          const file = String(drive.file);
          if (drive.media === 'cdrom' && !/cloudinit/.test(file)) {
            conf[key] = printDrive(drive);
            continue;
          }
          const [storeId, volname] = file.split(':') as [string, string];
          const dstStore = full && storageOverride ? storageOverride : storeId;
          if (/cloudinit/.test(file)) {
            const volid = `${dstStore}:vm-${newid}-cloudinit`;
            ctx.state.volumes.set(volid, { volid, storage: dstStore, node: target, content: 'images', format: 'raw', size: 4 * 1024 * 1024, vmid: newid, ctime: now() });
            conf[key] = printDrive({ ...drive, file: volid });
            continue;
          }
          const srcVol = ctx.state.volumes.get(file);
          const size = srcVol?.size ?? parseSize(String(drive.size ?? '0')) ?? 0;
          const dstName = ctx.state.nextDiskName(dstStore, newid);
          await ctx.locks.with(storageLockFile(dstStore), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.storage), () => sleep(ctx.latency.ms('storageLockHold', node)));
          if (full) {
            log(`drive mirror / copy of ${file} (${formatSize(size)})`);
            await sleep(ctx.latency.ms('fullClone', node, size / 4 / 1024 ** 3 / 0.3));
          } else {
            await sleep(ctx.latency.ms('linkedClone', node));
          }
          const volid = full ? `${dstStore}:${dstName}` : `${dstStore}:${volname}/${dstName}`;
          ctx.state.volumes.set(volid, { volid, storage: dstStore, node: target, content: 'images', format: 'raw', size, vmid: newid, ctime: now(), ...(full ? {} : { base: file }) });
          log(`  Logical volume "${dstName}" created.`);
          conf[key] = printDrive({ ...drive, file: volid, size: formatSize(size) });
        }
        conf.vmgenid = crypto.randomUUID();
        conf.smbios1 = `uuid=${crypto.randomUUID()}`;
        vm.config = { ...conf, lock: 'clone' };
        delete vm.config.lock;
      },
      (t) => {
        if (t.exitstatus !== 'OK') {
          for (const v of ctx.state.vmVolumes(newid)) ctx.state.volumes.delete(v.volid);
          ctx.state.vms.delete(newid);
        }
        releaseDst();
        releaseSrc();
      },
    );
    return task.upid;
  },

  'POST /nodes/{node}/qemu/{vmid}/template': async (ctx, req) => {
    const vm = getVm(ctx, req);
    if (vm.config.template) throw new HttpError(500, "you can't convert a template to a template");
    if (vm.status === 'running') throw new HttpError(500, "you can't convert a VM to template if VM is running");
    if (vm.config.lock) throw new HttpError(500, `VM is locked (${vm.config.lock})`);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmtemplate', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
        checkLock(vm);
        vm.config.lock = 'template';
        try {
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
          vm.config.template = 1;
        } finally {
          delete vm.config.lock;
        }
      });
    });
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
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
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
    const task = ctx.tasks.start(vm.node, 'qmstart', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
        if (vm.config.template) throw new Error("you can't start a vm if it's a template\n");
        checkLock(vm, bool(req, 'skiplock'));
        if (vm.status === 'running') throw new Error(`VM ${vm.vmid} already running\n`);
        for (const [k, v] of Object.entries(vm.config)) {
          if (!/^net\d+$/.test(k)) continue;
          const bridge = /(?:^|,)bridge=([^,]+)/.exec(String(v))?.[1];
          if (bridge && !ctx.state.bridges.includes(bridge)) throw new Error(`bridge '${bridge}' does not exist\n`);
        }
        if (vm.config.cicustom) {
          try {
            checkCicustom(ctx, String(vm.config.cicustom));
          } catch (e) {
            throw new Error(`${(e as Error).message}\n`);
          }
        }
        if (vmDisks(vm).some((d) => /cloudinit/.test(String(d.drive.file)))) log(`generating cloud-init ISO`);
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
    });
    return task.upid;
  },

  'POST /nodes/{node}/qemu/{vmid}/status/shutdown': (ctx, req) => powerOff(ctx, req, 'qmshutdown'),
  'POST /nodes/{node}/qemu/{vmid}/status/stop': (ctx, req) => powerOff(ctx, req, 'qmstop'),

  'DELETE /nodes/{node}/qemu/{vmid}': async (ctx, req) => {
    const vm = getVm(ctx, req);
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'qmdestroy', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
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

  'GET /nodes/{node}/qemu/{vmid}/cloudinit/dump': (ctx, req) => {
    const vm = getVm(ctx, req);
    const type = str(req, 'type');
    if (type === 'user') return readUserSnippet(ctx, vm) ?? generatedUserData(vm);
    if (type === 'network') return networkData(vm);
    return `instance-id: ${ctx.state.configDigest(vm)}\n`;
  },
};

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
    await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.scale(LOCK_TIMEOUTS.config), async () => {
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
function prepareOptionsDryRun(ctx: SimContext, req: ApiRequest, vm: SimVm): void {
  const route = ctx.schema.get('POST', '/nodes/{node}/qemu/{vmid}/config')!;
  const params = configParams(req, ['node', 'vmid', 'digest', 'skiplock', 'delete', 'revert', 'background_delay']);
  prepareOptions(ctx, route, vm.vmid, vm.node, params, req.auth);
}
