/** Disk-level VM operations: linked/full clone, convert to template, resize. */
import { HttpError } from '../auth.js';
import { LOCK_TIMEOUTS, sleep } from '../latency.js';
import { storageLockFile, vmLockFile } from '../locks.js';
import { formatSize, parseSize } from '../schema/formats.js';
import type { SimVm } from '../state.js';
import { bool, int, str, type HandlerTable } from './context.js';
import { CREATE, checkLock, forkDelay, getVm, now, user, vmDisks } from './vm-common.js';
import { DRIVE_RE, newMac, parseDrive, printDrive } from './vm-config.js';

export const diskHandlers: HandlerTable = {
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
        if (!full && !/cloudinit/.test(file) && !/:base-\d+-disk-\d+$/.test(file))
          throw new Error(`Linked clone feature is not supported for drive '${d.key}'\n`);
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
    const task = ctx.tasks.start(
      node,
      'qmclone',
      String(src.vmid),
      user(req),
      async ({ log }) => {
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
                  ctx.state.volumes.set(volid, {
                    volid,
                    storage: dstStore,
                    node: dstNode,
                    content: 'images',
                    format: 'raw',
                    size: 4 * 1024 * 1024,
                    vmid: newid,
                    ctime: now(),
                  });
                  newVols.push(volid);
                  conf[key] = printDrive({ ...drive, file: volid });
                  continue;
                }
                const srcVol = ctx.state.volumes.get(file);
                const size = srcVol?.size ?? parseSize(String(drive.size ?? '0')) ?? 0;
                log(`create ${full ? 'full' : 'linked'} clone of drive ${key} (${file})`);
                const dstName = await ctx.locks.with(
                  storageLockFile(dstStore),
                  'exclusive',
                  ctx.latency.lockMs(LOCK_TIMEOUTS.storage),
                  async () => {
                    await sleep(ctx.latency.ms('storageLockHold', node));
                    const n = ctx.state.nextDiskName(dstStore, newid);
                    const volid = full ? `${dstStore}:${n}` : `${dstStore}:${volname}/${n}`;
                    ctx.state.volumes.set(volid, {
                      volid,
                      storage: dstStore,
                      node: dstNode,
                      content: 'images',
                      format: 'raw',
                      size,
                      vmid: newid,
                      ctime: now(),
                      ...(full ? {} : { base: file }),
                    });
                    newVols.push(volid);
                    return n;
                  },
                );
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
      },
      (t) => {
        // an injected task fault (or a crash) must not leave the temporary config behind
        if (t.exitstatus !== 'OK' && created) {
          for (const v of ctx.state.vmVolumes(newid)) ctx.state.volumes.delete(v.volid);
          ctx.state.vms.delete(newid);
        }
      },
    );
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
    if (vm.config.lock && !bool(req, 'skiplock')) throw new HttpError(500, `VM ${vm.vmid} is locked (${vm.config.lock})`);
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
    if (newSize < current) throw new HttpError(500, 'shrinking disks is not supported');
    await forkDelay(ctx, vm.node);
    const task = ctx.tasks.start(vm.node, 'resize', String(vm.vmid), user(req), async ({ log }) => {
      await ctx.locks.with(vmLockFile(vm.vmid), 'exclusive', ctx.latency.lockMs(LOCK_TIMEOUTS.config), async () => {
        await sleep(ctx.latency.ms('resize', vm.node));
        if (vol) vol.size = newSize;
        vm.config[disk] = printDrive({ ...drive, size: formatSize(newSize) });
        log(
          `  Size of logical volume pve/${String(drive.file).split(':')[1]} changed from ${formatSize(current)} to ${formatSize(newSize)}.`,
        );
      });
    });
    return task.upid;
  },
};
