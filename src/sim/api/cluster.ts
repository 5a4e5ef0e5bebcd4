/** /version, /nodes, /cluster/*, /access/ticket, node network and task endpoints. */
import { HttpError } from '../auth.js';
import { parseUpid } from '../tasks.js';
import { int, str, type HandlerTable, type SimContext, type ApiRequest } from './context.js';
import { HOST_DNS } from './cloudinit.js';

const GiB = 1024 ** 3;

export function requireNode(ctx: SimContext, req: ApiRequest): string {
  const node = str(req, 'node')!;
  // the API proxies to the node named in the path; an unknown name fails the host lookup
  if (!ctx.state.hasNode(node))
    throw new HttpError(500, `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
  return node;
}

function vmResource(ctx: SimContext, vmid: number) {
  const vm = ctx.state.vms.get(vmid)!;
  const disk = ctx.state
    .vmVolumes(vmid)
    .filter((v) => v.content === 'images')
    .reduce((a, v) => a + v.size, 0);
  return {
    id: `qemu/${vmid}`,
    type: 'qemu',
    vmid,
    node: vm.node,
    name: vm.config.name ?? `VM ${vmid}`,
    status: vm.status,
    template: vm.config.template ? 1 : 0,
    ...(vm.config.lock ? { lock: vm.config.lock } : {}),
    ...(vm.config.tags ? { tags: vm.config.tags } : {}),
    maxcpu: Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1),
    maxmem: Number(String(vm.config.memory ?? 512).replace(/^current=/, '')) * 1024 * 1024,
    maxdisk: disk,
    uptime: vm.status === 'running' && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
    cpu: vm.status === 'running' ? 0.02 : 0,
    mem: 0,
    disk: 0,
    diskread: 0,
    diskwrite: 0,
    netin: 0,
    netout: 0,
    hastate: undefined,
  };
}

/** A node row of /cluster/resources, with the keys pvestatd's data gives it. */
function nodeResource(node: string) {
  return {
    id: `node/${node}`,
    type: 'node',
    node,
    status: 'online',
    level: '',
    'cgroup-mode': 2,
    maxcpu: 16,
    cpu: 0.03,
    maxmem: 64 * GiB,
    mem: 8 * GiB,
    maxdisk: 100 * GiB,
    disk: 10 * GiB,
    uptime: 86400,
  };
}

/** The task of a tasks/{upid} request; Proxmox reads it from the node in the path. */
function findTask(ctx: SimContext, req: ApiRequest) {
  const upid = str(req, 'upid')!;
  const parsed = parseUpid(upid);
  if (!parsed) throw new HttpError(400, 'Parameter verification failed.', { upid: 'unable to parse worker upid' });
  const t = ctx.tasks.get(upid);
  if (!t || parsed.node !== str(req, 'node')) throw new HttpError(400, 'Parameter verification failed.', { upid: 'no such task' });
  return t;
}

export const clusterHandlers: HandlerTable = {
  'GET /version': (ctx) => {
    const v = ctx.state.version;
    return { version: v, release: v.split('.').slice(0, 2).join('.'), repoid: 'f00dcafe', console: 'xtermjs' };
  },

  'GET /access/ticket': () => null,
  'GET /access/domains': () => [
    { realm: 'pam', type: 'pam', comment: 'Linux PAM standard authentication' },
    { realm: 'pve', type: 'pve', comment: 'Proxmox VE authentication server', default: 1 },
  ],
  'POST /access/ticket': (ctx, req) => {
    const t = ctx.auth.createTicket(str(req, 'username')!, str(req, 'password')!, str(req, 'realm'));
    return {
      ...t,
      cap: { vms: {}, storage: {}, access: {}, nodes: {}, dc: {}, sdn: {}, mapping: {} },
      clustername: ctx.state.nodes.length > 1 ? 'sim' : undefined,
    };
  },

  // pveproxy's /nodes rows are the node rows of the resource list plus ssl_fingerprint
  'GET /nodes': (ctx, req) =>
    ctx.auth.canSee(req.auth)
      ? ctx.state.nodes.map((node) => {
          const { 'cgroup-mode': _c, ...row } = nodeResource(node);
          return { ...row, ...(ctx.state.sslFingerprint ? { ssl_fingerprint: ctx.state.sslFingerprint } : {}) };
        })
      : [],

  'GET /cluster/status': (ctx, req) => {
    if (!ctx.auth.canSee(req.auth)) return [];
    const nodes = ctx.state.nodes;
    const rows: unknown[] = nodes.map((name, i) => ({
      type: 'node',
      id: `node/${name}`,
      name,
      ip: ctx.state.nodeAddress(name),
      nodeid: nodes.length > 1 ? i + 1 : 0,
      online: 1,
      level: '',
      local: i === 0 ? 1 : 0,
    }));
    // a single node outside a cluster has no cluster row (pvecm create was never run)
    if (nodes.length > 1)
      rows.unshift({ type: 'cluster', id: 'cluster', name: 'sim', nodes: nodes.length, quorate: 1, version: nodes.length });
    return rows;
  },

  'GET /nodes/{node}/status': (ctx, req) => {
    requireNode(ctx, req);
    return {
      pveversion: `pve-manager/${ctx.state.version}/f00dcafe`,
      kversion: 'Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z)',
      'current-kernel': {
        sysname: 'Linux',
        release: '6.8.12-9-pve',
        version: '#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z)',
        machine: 'x86_64',
      },
      'boot-info': { mode: 'efi', secureboot: 0 },
      uptime: 86400,
      cpuinfo: {
        cpus: 16,
        sockets: 1,
        cores: 8,
        model: 'Simulated CPU',
        mhz: '3000.000',
        hvm: '1',
        flags: 'fpu vme de pse tsc msr pae mce',
        user_hz: 100,
      },
      memory: { total: 64 * GiB, used: 8 * GiB, free: 56 * GiB, available: 55 * GiB },
      swap: { total: 8 * GiB, used: 0, free: 8 * GiB },
      ksm: { shared: 0 },
      rootfs: { total: 100 * GiB, used: 10 * GiB, avail: 90 * GiB, free: 90 * GiB },
      loadavg: ['0.10', '0.12', '0.09'],
      cpu: 0.03,
      wait: 0,
      idle: 0,
    };
  },

  // The caller's own effective privileges (every user may read their own).
  'GET /access/permissions': (ctx, req) => {
    if (!req.auth) throw new HttpError(401, 'No ticket');
    return ctx.auth.permissionsOf(req.auth, str(req, 'path') ?? '/');
  },

  // The host's /etc/resolv.conf, as the DNS panel shows it (and as cloud-init gives VMs without a nameserver).
  'GET /nodes/{node}/dns': (ctx, req) => {
    requireNode(ctx, req);
    const out: Record<string, string> = { search: HOST_DNS.search.join(' ') };
    HOST_DNS.nameservers.slice(0, 3).forEach((ns, i) => (out[`dns${i + 1}`] = ns));
    return out;
  },

  'GET /nodes/{node}/network': (ctx, req) => {
    requireNode(ctx, req);
    const type = str(req, 'type');
    const ifaces = [
      {
        iface: 'vmbr0',
        type: 'bridge',
        active: 1,
        autostart: 1,
        bridge_ports: 'eno1',
        bridge_stp: 'off',
        bridge_fd: '0',
        cidr: '192.168.1.10/24',
        address: '192.168.1.10',
        netmask: '24',
        gateway: '192.168.1.1',
        method: 'static',
        families: ['inet'],
        priority: 5,
      },
      { iface: 'eno1', type: 'eth', active: 1, method: 'manual', families: ['inet'], priority: 3 },
    ];
    if (!type) return ifaces;
    if (type === 'any_bridge' || type === 'any_local_bridge') return ifaces.filter((i) => i.type === 'bridge');
    return ifaces.filter((i) => i.type === type);
  },

  'GET /cluster/resources': (ctx, req) => {
    if (!ctx.auth.canSee(req.auth)) return [];
    const type = str(req, 'type');
    const out: unknown[] = [];
    if (!type || type === 'vm') for (const vmid of [...ctx.state.vms.keys()].sort((a, b) => a - b)) out.push(vmResource(ctx, vmid));
    if (!type || type === 'node') {
      for (const node of ctx.state.nodes) {
        out.push(nodeResource(node));
      }
    }
    if (!type || type === 'storage') {
      for (const node of ctx.state.nodes) {
        for (const st of ctx.state.storages.values()) {
          out.push({
            id: `storage/${node}/${st.storage}`,
            type: 'storage',
            node,
            storage: st.storage,
            status: 'available',
            plugintype: st.type,
            content: st.content.join(','),
            shared: st.shared ? 1 : 0,
            maxdisk: st.total,
            disk: 0,
          });
        }
      }
    }
    return out;
  },

  'GET /cluster/nextid': (ctx, req) => {
    const wanted = int(req, 'vmid');
    if (wanted !== undefined) {
      if (ctx.state.vms.has(wanted)) throw new HttpError(400, 'Parameter verification failed.', { vmid: `VM ${wanted} already exists` });
      return String(wanted);
    }
    // the schema says integer, but pve-manager answers the id as a string ({"data":"100"})
    for (let id = ctx.state.nextIdRange.lower; id < ctx.state.nextIdRange.upper; id++) if (!ctx.state.vms.has(id)) return String(id);
    throw new HttpError(500, 'unable to get any free VMID in range [100, 1000000]');
  },

  'GET /nodes/{node}/tasks': (ctx, req) => {
    const node = requireNode(ctx, req);
    const source = str(req, 'source') ?? 'archive';
    const typefilter = str(req, 'typefilter');
    const userfilter = str(req, 'userfilter');
    const vmid = str(req, 'vmid');
    const since = int(req, 'since');
    const until = int(req, 'until');
    const errors = str(req, 'errors') === '1';
    const statuses = (str(req, 'statusfilter') ?? '')
      .split(/[,;\s]+/)
      .filter(Boolean)
      .map((x) => x.toLowerCase());
    const statusOf = (exit: string) => (exit === 'OK' ? 'ok' : /^WARNINGS/.test(exit) ? 'warning' : 'error');
    const list = ctx.tasks
      .all()
      .filter((t) => t.node === node)
      .filter((t) => (source === 'all' ? true : source === 'active' ? t.status === 'running' : t.status === 'stopped'))
      .filter((t) => (!typefilter || t.type === typefilter) && (!vmid || t.id === vmid) && (!userfilter || t.user.includes(userfilter)))
      .filter((t) => (since === undefined || t.starttime >= since) && (until === undefined || t.starttime <= until))
      .filter(
        (t) =>
          (!errors || (t.exitstatus !== undefined && t.exitstatus !== 'OK')) &&
          (!statuses.length || (t.exitstatus !== undefined && statuses.includes(statusOf(t.exitstatus)))),
      )
      .sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    const start = int(req, 'start') ?? 0;
    const limit = int(req, 'limit') ?? 50;
    return list.slice(start, start + limit).map((t) => ({
      upid: t.upid,
      node: t.node,
      pid: t.pid,
      pstart: t.pstart,
      starttime: t.starttime,
      type: t.type,
      id: t.id,
      user: t.user,
      ...(t.status === 'stopped' ? { endtime: t.endtime, status: t.exitstatus } : {}),
    }));
  },

  'GET /nodes/{node}/tasks/{upid}/status': (ctx, req) => {
    requireNode(ctx, req);
    const t = findTask(ctx, req);
    return {
      upid: t.upid,
      node: t.node,
      pid: t.pid,
      pstart: t.pstart,
      starttime: t.starttime,
      type: t.type,
      id: t.id,
      user: t.user.replace(/!.*$/, ''),
      ...(t.user.includes('!') ? { tokenid: t.user.replace(/^.*!/, '') } : {}),
      status: t.status,
      ...(t.status === 'stopped' ? { exitstatus: t.exitstatus, endtime: t.endtime } : {}),
    };
  },

  'GET /nodes/{node}/tasks/{upid}/log': (ctx, req) => {
    requireNode(ctx, req);
    const t = findTask(ctx, req);
    const start = int(req, 'start') ?? 0;
    const limit = int(req, 'limit') ?? 50;
    const lines = limit === 0 ? t.log.slice(start) : t.log.slice(start, start + limit);
    return lines.map((line, i) => ({ n: start + i + 1, t: line }));
  },
};
