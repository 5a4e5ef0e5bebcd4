/**
 * The Proxmox privileges flatcar-k3s needs, per PVE major version, and the check `proxmox:connect` does
 * before anything is created: the token's (or user's) effective privileges on each path, read from
 * GET /access/permissions, against this list. PVE 9 split the guest agent privileges off VM.Monitor
 * (VM.GuestAgent.Audit reads the node addresses); PVE 8 has only VM.Monitor for that.
 */

export interface Requirement {
  /** The privilege (any one of `anyOf` also satisfies it). */
  priv: string;
  /** Alternatives that grant the same (e.g. Sys.Audit + Sys.Modify on / for downloads before Sys.AccessNetwork). */
  anyOf?: string[][];
  /** Where Proxmox checks it. */
  path: string;
  why: string;
}

export interface PrivilegeContext {
  pveVersion: string;
  node: string;
  storages: string[];
  bridge: string;
}

const VM_PRIVS: Array<[string, string]> = [
  ['VM.Allocate', 'create the template and the node VMs'],
  ['VM.Clone', 'clone the nodes from the template'],
  ['VM.Audit', 'read VM configs and status'],
  ['VM.PowerMgmt', 'start and stop the VMs'],
  ['VM.Config.Disk', 'import and resize disks'],
  ['VM.Config.CDROM', 'attach the cloud-init drive'],
  ['VM.Config.CPU', 'set cores and CPU type'],
  ['VM.Config.Memory', 'set memory'],
  ['VM.Config.Network', 'attach the NIC with its fixed MAC'],
  ['VM.Config.HWType', 'set machine, BIOS and serial console'],
  ['VM.Config.Options', 'set name, tags, description, agent'],
  ['VM.Config.Cloudinit', 'set cicustom (the Ignition snippet) and ipconfig0'],
];

/** The guest agent privilege that reads node addresses: VM.Monitor on PVE 8, VM.GuestAgent.Audit on 9. */
export function agentPrivilege(pveVersion: string): string {
  return pveMajor(pveVersion) >= 9 ? 'VM.GuestAgent.Audit' : 'VM.Monitor';
}

export function pveMajor(version: string): number {
  return Number(/^(\d+)/.exec(version)?.[1] ?? 0);
}

/** Every privilege the run needs, with the path Proxmox checks it on. */
export function requiredPrivileges(c: PrivilegeContext): Requirement[] {
  const out: Requirement[] = VM_PRIVS.map(([priv, why]) => ({ priv, path: '/vms', why }));
  out.push({ priv: agentPrivilege(c.pveVersion), path: '/vms', why: 'read the node addresses from the guest agent' });
  for (const s of [...new Set(c.storages)]) {
    out.push({ priv: 'Datastore.Audit', path: `/storage/${s}`, why: `list storage ${s}` });
    out.push({ priv: 'Datastore.AllocateSpace', path: `/storage/${s}`, why: `put disks and files on ${s}` });
  }
  out.push({ priv: 'Datastore.AllocateTemplate', path: `/storage/${c.storages[0]}`, why: 'download the Flatcar image' });
  out.push({ priv: 'Sys.Audit', path: `/nodes/${c.node}`, why: 'list nodes, read task logs and the host DNS' });
  out.push({
    priv: 'Sys.AccessNetwork',
    anyOf: [['Sys.Audit', 'Sys.Modify']],
    path: `/nodes/${c.node}`,
    why: 'let Proxmox download the Flatcar image (older 8.x: Sys.Audit + Sys.Modify on /)',
  });
  out.push({ priv: 'SDN.Use', path: `/sdn/zones/localnetwork/${c.bridge}`, why: `attach NICs to ${c.bridge}` });
  return out;
}

/** The role privileges for `pveum role add`, per PVE major version (the README's list). */
export function rolePrivileges(pveVersion: string): string[] {
  const c = requiredPrivileges({ pveVersion, node: 'pve', storages: ['local'], bridge: 'vmbr0' });
  return [...new Set(c.map((r) => r.priv))];
}

/** Effective privileges per path, as GET /access/permissions?path=… answers (path → priv → propagate). */
export type EffectivePermissions = Record<string, Record<string, number | boolean>>;

/** The privileges a path has in an /access/permissions answer for that path (or its nearest listed ancestor). */
export function privilegesAt(perms: EffectivePermissions, path: string): Set<string> {
  if (perms[path]) return new Set(Object.keys(perms[path]!));
  let best: string | undefined;
  for (const p of Object.keys(perms)) {
    const prefix = p === '/' ? '/' : `${p}/`;
    if ((path.startsWith(prefix) || p === '/') && (!best || p.length > best.length)) best = p;
  }
  if (!best) return new Set();
  return new Set(
    Object.entries(perms[best]!)
      .filter(([, propagate]) => !!propagate)
      .map(([k]) => k),
  );
}

/** The requirements not met, given the effective privileges of each required path (read by the caller). */
export function missingPrivileges(reqs: Requirement[], at: (path: string) => Set<string>, root: Set<string>): Requirement[] {
  return reqs.filter((r) => {
    const have = at(r.path);
    if (have.has(r.priv)) return false;
    // The alternatives of Sys.AccessNetwork are checked on / (Proxmox's backwards-compatible rule).
    return !(r.anyOf ?? []).some((set) => set.every((p) => root.has(p)));
  });
}
