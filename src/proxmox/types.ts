/**
 * The narrow Proxmox interface the steps use. Implemented by src/proxmox/client.ts over `proxmox-api`
 * (real PVE or the simulator: same HTTP). Parameters use Proxmox's own names.
 */
export type Upid = string;
export type PveParams = Record<string, string | number | boolean | undefined>;

export interface PveVersion {
  version: string;
  release: string;
  repoid: string;
}
export interface PveNodeInfo {
  node: string;
  status: 'online' | 'offline' | 'unknown';
  maxcpu?: number;
  maxmem?: number;
  mem?: number;
  cpu?: number;
}
export interface PveClusterNode {
  name: string;
  ip?: string;
  local: boolean;
  online: boolean;
}
export interface PveStorageInfo {
  storage: string;
  type: string;
  /** Content types, split: ["images","rootdir"]. */
  content: string[];
  active: boolean;
  enabled: boolean;
  shared: boolean;
  avail?: number;
  total?: number;
  used?: number;
}
export interface PveVolume {
  volid: string;
  format?: string;
  size?: number;
  content: string;
  ctime?: number;
}
export interface PveBridge {
  iface: string;
  type: string;
  active?: boolean;
  cidr?: string;
  comments?: string;
}
export interface PveVmResource {
  type: 'qemu' | 'lxc';
  vmid: number;
  node: string;
  name?: string;
  status: string;
  template: boolean;
  lock?: string;
  tags?: string;
}
export interface PveTaskStatus {
  upid: Upid;
  node: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  type: string;
  id?: string;
  user: string;
  starttime: number;
  endtime?: number;
}
export interface PveAgentInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: Array<{ 'ip-address': string; 'ip-address-type': 'ipv4' | 'ipv6'; prefix: number }>;
}

export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called with new task log lines as they appear. */
  onLog?: (line: string) => void;
}

export interface ProxmoxClient {
  /** SHA-256 fingerprint of the server certificate this client is pinned to / verified (client.ts sets it). */
  readonly tlsFingerprint?: string;
  /** Who the client is logged in as (no secret); lets steps say early when root@pam is required. */
  readonly auth?: { kind: 'token' | 'ticket'; user: string; tokenId?: string };
  version(): Promise<PveVersion>;
  nodes(): Promise<PveNodeInfo[]>;
  /** GET /cluster/status, node rows: each node's address (ip) and which one answers this API (local). */
  clusterNodes(): Promise<PveClusterNode[]>;
  storages(node: string): Promise<PveStorageInfo[]>;
  /** GET /storage/{storage}: the datacenter-wide storage definition (content list, path). */
  storageConfig(storage: string): Promise<{ storage: string; type: string; content: string[]; path?: string; shared?: boolean }>;
  /** PUT /storage/{storage} content=… (replaces the list: read first). */
  setStorageContent(storage: string, content: string[]): Promise<void>;
  storageContent(node: string, storage: string, content?: string): Promise<PveVolume[]>;
  bridges(node: string): Promise<PveBridge[]>;
  /** GET /access/permissions?path=…: the caller's effective privileges (path → privilege → propagate). Optional for test fakes. */
  permissions?(path?: string): Promise<Record<string, Record<string, number | boolean>>>;
  /** GET /nodes/{node}/dns: the host's resolvers (what cloud-init gives a VM without a nameserver). Optional for test fakes. */
  nodeDns?(node: string): Promise<{ servers: string[]; search?: string }>;
  vms(): Promise<PveVmResource[]>;
  /** Lowest free VMID in [start, end] not in `exclude`; null when the range is full. Does not reserve. */
  freeVmid(range: { start: number; end: number }, exclude?: Iterable<number>): Promise<number | null>;
  downloadUrl(
    node: string,
    storage: string,
    params: {
      url: string;
      content: 'iso' | 'vztmpl' | 'import';
      filename: string;
      checksum?: string;
      'checksum-algorithm'?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
      'verify-certificates'?: boolean;
    },
  ): Promise<Upid>;
  createVm(node: string, params: PveParams & { vmid: number }): Promise<Upid>;
  vmConfig(node: string, vmid: number): Promise<Record<string, string | number>>;
  /** PUT …/config: synchronous. */
  updateVmConfig(node: string, vmid: number, params: PveParams): Promise<void>;
  /** POST …/config: asynchronous, returns a UPID. */
  updateVmConfigAsync(node: string, vmid: number, params: PveParams): Promise<Upid>;
  cloneVm(
    node: string,
    vmid: number,
    params: { newid: number; name?: string; description?: string; full?: boolean; target?: string; storage?: string; pool?: string },
  ): Promise<Upid>;
  convertToTemplate(node: string, vmid: number): Promise<Upid>;
  resizeDisk(node: string, vmid: number, disk: string, size: string): Promise<Upid>;
  startVm(node: string, vmid: number): Promise<Upid>;
  shutdownVm(node: string, vmid: number, timeoutSec?: number): Promise<Upid>;
  stopVm(node: string, vmid: number): Promise<Upid>;
  deleteVm(node: string, vmid: number, opts?: { purge?: boolean; destroyUnreferencedDisks?: boolean }): Promise<Upid>;
  vmStatus(node: string, vmid: number): Promise<{ status: string; name?: string; lock?: string; template?: boolean; qmpstatus?: string }>;
  /** Guest agent network-get-interfaces; throws RemoteError while the agent is not running. */
  agentInterfaces(node: string, vmid: number): Promise<PveAgentInterface[]>;
  taskStatus(node: string, upid: Upid): Promise<PveTaskStatus>;
  taskLog(node: string, upid: Upid, start?: number): Promise<string[]>;
  /** Poll until the task stops; throws RemoteError (with the task log tail) unless exitstatus is "OK". */
  waitTask(node: string, upid: Upid, opts?: WaitOptions): Promise<PveTaskStatus>;
  /** The shortest sensible interval between two status reads of a task (ms), from the GET round trip. */
  pollFloorMs?(): number;
}
