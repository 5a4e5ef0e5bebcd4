/**
 * The cluster config: one zod schema gives the types, the defaults and the error messages.
 * Presets (presets/*.yaml) are partial configs validated by the same schema after merging.
 * Key spellings listed in issue #2 are a contract: preset, cluster.name, cluster.k3sVersion,
 * proxmox.url, proxmox.tokenId, proxmox.tokenSecret, proxmox.username, proxmox.password,
 * proxmox.fingerprint, proxmox.nodes, flatcar.channel, flatcar.version, nodes.servers.count,
 * nodes.agents.count, nodes.vip, apps.<name>.
 */
import * as z from 'zod';

// A config is parsed once per process: zod's JIT (it compiles a parser per object shape with
// new Function on first use) costs more than it saves at that count, and probing for eval loads
// Node's navigator global. The interpreter gives the same results and messages.
z.config({ jitless: true });

const dnsLabel = z.string().regex(/^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/, {
  message: 'must be a DNS label: lower-case letters, digits and "-", starting with a letter, at most 40 characters (e.g. "homelab")',
});

export const SHA256_FINGERPRINT = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/;
const fingerprint = z.string().regex(SHA256_FINGERPRINT, {
  message:
    'must be a SHA-256 certificate fingerprint: 32 hex bytes separated by ":" (e.g. "AB:CD:…:EF", as Proxmox shows under Datacenter → Certificates)',
});

/** SSH host key fingerprint as OpenSSH prints it: "SHA256:<base64 without padding>". */
const sshHostKeyFingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, {
  message: 'must be an OpenSSH host key fingerprint like "SHA256:abc…" (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)',
});

const ipv4 = z.string().regex(/^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/, {
  message: 'must be an IPv4 address (e.g. "192.168.1.10")',
});
const cidr = z.string().regex(/^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/([0-9]|[12]\d|3[0-2])$/, {
  message: 'must be an IPv4 CIDR (e.g. "192.168.1.0/24")',
});
const mac = z.string().regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, { message: 'must be a MAC address like "BC:24:11:00:00:01"' });
const pveId = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$/, { message: 'must be a Proxmox id (letters, digits, "-", "_", ".")' });
const sizeGiB = z.number({ message: 'must be a number of GiB (e.g. 20)' }).int().min(1).max(65536);
const memoryMiB = z
  .number({ message: 'must be a number of MiB (e.g. 4096)' })
  .int()
  .min(512)
  .max(4 * 1024 * 1024);
const cores = z.number({ message: 'must be a whole number of cores (e.g. 2)' }).int().min(1).max(512);
const vmid = z.number({ message: 'must be a VM id (100 to 999999999)' }).int().min(100).max(999999999);

const roleSchema = (defaults: { count: number; cores: number; memory: number; disk: number }) =>
  z
    .object({
      count: z.number({ message: 'must be a whole number' }).int().min(0).max(1000).default(defaults.count),
      cores: cores.default(defaults.cores),
      /** MiB */
      memory: memoryMiB.default(defaults.memory),
      /** GiB */
      disk: sizeGiB.default(defaults.disk),
      labels: z.record(z.string(), z.string()).default({}),
      taints: z
        .array(
          z.string().regex(/^[^=:\s]+(=[^:\s]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$/, {
            message: 'must be a taint like "key=value:NoSchedule"',
          }),
        )
        .default([]),
      /** Fixed MACs per node index (otherwise derived from cluster name and node). */
      macs: z.array(mac).default([]),
    })
    .strict()
    .prefault({});

const appToggle = <T extends z.ZodObject>(obj: T) =>
  z
    .union([z.boolean(), obj])
    .default(false)
    .transform(
      (v) =>
        (v === false ? { enabled: false as const } : { enabled: true as const, ...(v === true ? obj.parse({}) : v) }) as {
          enabled: boolean;
        } & z.output<T>,
    );

export const ProxmoxSchema = z
  .object({
    url: z
      .string({ message: 'is required: the Proxmox URL, e.g. "https://pve.example.lan:8006"' })
      .url({ message: 'must be a URL like "https://pve.example.lan:8006"' })
      .refine((u) => u.startsWith('https://'), { message: 'must use https:// (Proxmox serves its API over TLS on port 8006)' }),
    tokenId: z
      .string()
      .regex(/^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/, {
        message: 'must be an API token id "user@realm!tokenname" (e.g. "root@pam!flatcar")',
      })
      .optional(),
    tokenSecret: z.string().min(1).optional(),
    username: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, { message: 'must be "user@realm" (e.g. "root@pam")' })
      .optional(),
    password: z.string().min(1).optional(),
    fingerprint: fingerprint.optional(),
    caFile: z.string().optional(),
    /** PVE nodes to place VMs on; empty = every online node. The first one builds the template. */
    nodes: z.array(pveId).default([]),
    storage: z
      .object({
        /** VM disks (images content), e.g. local-lvm. */
        disks: pveId.default('local-lvm'),
        /** Where the Flatcar image is downloaded to (import content, PVE >= 8.4). */
        images: pveId.default('local'),
        /** Where Ignition snippets go (snippets content). */
        snippets: pveId.default('local'),
      })
      .strict()
      .prefault({}),
    bridge: z
      .string()
      .regex(/^[a-zA-Z][a-zA-Z0-9_.-]*$/, { message: 'must be a bridge name like "vmbr0"' })
      .default('vmbr0'),
    /** SSH to the PVE host, for snippet upload (snippets cannot be uploaded through the API). */
    ssh: z
      .object({
        host: z.string().optional(),
        port: z.number().int().min(1).max(65535).default(22),
        user: z.string().default('root'),
        privateKeyFile: z.string().optional(),
        /** Pinned host key fingerprint; recorded on first use when absent. */
        hostKey: sshHostKeyFingerprint.optional(),
        /**
         * Per PVE node (snippets on local storage go to each host that runs VMs): host (default: the
         * node's address from /cluster/status), port (default: port above) and pinned hostKey.
         * user and privateKeyFile are the same for all hosts.
         */
        nodes: z
          .record(
            pveId,
            z
              .object({
                host: z.string().min(1).optional(),
                port: z.number().int().min(1).max(65535).optional(),
                hostKey: sshHostKeyFingerprint.optional(),
              })
              .strict(),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const FlatcarSchema = z
  .object({
    channel: z.enum(['stable', 'beta', 'alpha', 'lts'], { message: 'must be one of stable, beta, alpha, lts' }).default('stable'),
    version: z
      .string()
      .regex(/^(current|\d+\.\d+\.\d+)$/, { message: 'must be "current" or a Flatcar version like "4593.2.5"' })
      .default('current'),
    arch: z.enum(['amd64', 'arm64']).default('amd64'),
    /** Where images live; "{channel}" is replaced. A mirror can be given instead. */
    imageBaseUrl: z.string().url().default('https://{channel}.release.flatcar-linux.net'),
    /** Where the releases feed lives (releases-<channel>.json below it). */
    feedBaseUrl: z.string().url().default('https://www.flatcar.org/releases-json'),
    /** VMID of the template; default: the first id of nodes.vmids. */
    templateVmid: vmid.optional(),
    ignition: z
      .object({
        /** kernel.printk console log level (sysctl drop-in). */
        kernelLogLevel: z.number().int().min(0).max(7).default(4),
        maskedUnits: z
          .array(
            z.string().regex(/^[A-Za-z0-9@._:\\-]+\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$/, {
              message: 'must be a systemd unit name with its type, e.g. "locksmithd.service"',
            }),
          )
          .default([
            'locksmithd.service',
            'docker.service',
            'docker.socket',
            'systemd-sysupdate-reboot.timer',
            'systemd-sysupdate-reboot.service',
          ]),
        /** REBOOT_STRATEGY=off so kured decides reboots. */
        rebootStrategy: z.enum(['off', 'reboot', 'etcd-lock']).default('off'),
        volatileJournal: z.boolean().default(false),
        /**
         * Flatcar's Proxmox VE image logs `core` in on the console (flatcar.autologin): anyone with Proxmox
         * console access gets passwordless sudo. Off by default (the kernel argument is removed); true keeps it, for debugging.
         */
        consoleAutologin: z.boolean().default(false),
        files: z
          .array(
            z
              .object({
                path: z.string().regex(/^\/[^\0]*$/, { message: 'must be an absolute path' }),
                contents: z.string(),
                mode: z.number().int().min(0).max(0o7777).default(0o644),
              })
              .strict(),
          )
          .default([]),
        units: z
          .array(
            z
              .object({
                name: z.string().regex(/^[A-Za-z0-9@._:\\-]+\.(service|socket|timer|target|path|mount)$/, {
                  message: 'must be a systemd unit name with its type, e.g. "hello.service"',
                }),
                contents: z.string().optional(),
                enabled: z.boolean().default(true),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const NodesSchema = z
  .object({
    servers: roleSchema({ count: 1, cores: 2, memory: 4096, disk: 20 }),
    agents: roleSchema({ count: 0, cores: 2, memory: 4096, disk: 30 }),
    /** VMIDs for the template and the nodes, inclusive. */
    vmids: z
      .object({ start: vmid.default(9000), end: vmid.default(9099) })
      .strict()
      .prefault({}),
    network: z
      .object({
        mode: z.enum(['dhcp', 'static']).default('dhcp'),
        /** static: the subnet, the gateway and the first address handed out (servers first, then agents). */
        cidr: cidr.optional(),
        gateway: ipv4.optional(),
        firstAddress: ipv4.optional(),
        dns: z.array(ipv4).default([]),
        searchDomain: z.string().optional(),
      })
      .strict()
      .prefault({}),
    /** Control-plane virtual IP (kube-vip); required for more than one server. */
    vip: ipv4.optional(),
    /** Interface kube-vip announces the VIP on. */
    vipInterface: z.string().default('eth0'),
    /** SSH public keys for the core user. */
    sshKeys: z
      .array(
        z
          .string()
          .regex(
            /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/,
            { message: 'must be an OpenSSH public key line ("ssh-ed25519 AAAA… comment")' },
          ),
      )
      .default([]),
    /** Private key used to reach the nodes as core (default: ssh-agent, then ~/.ssh/id_ed25519, id_rsa). */
    sshPrivateKeyFile: z.string().optional(),
    /** SSH port of the nodes (22 on Flatcar; the demo's simulated nodes use another). */
    sshPort: z.number().int().min(1).max(65535).default(22),
    /** Linked clones by default (fast); full clones copy the disk. */
    fullClone: z.boolean().default(false),
    /**
     * Which PVE host each VM goes to: spread (servers on distinct hosts, agents balanced), pack (all on
     * the first host), or an explicit host per node name ({ homelab-server-1: pve1, … }; others spread).
     */
    placement: z
      .union(
        [
          z.enum(['spread', 'pack']),
          z.record(z.string().regex(/^[a-z0-9-]+$/, { message: 'must be a node name like "homelab-server-1"' }), pveId),
        ],
        { message: 'must be "spread", "pack", or a map of node name to PVE node ({ homelab-server-1: pve1 })' },
      )
      .default('spread'),
  })
  .strict();

export const ClusterSchema = z
  .object({
    name: dnsLabel,
    /** A k3s release like "v1.33.4+k3s1", or "stable"/"latest" (resolved once, then recorded). */
    k3sVersion: z
      .string()
      .regex(/^(stable|latest|v\d+\.\d+\.\d+\+k3s\d+)$/, { message: 'must be "stable", "latest" or a k3s release like "v1.33.4+k3s1"' })
      .default('stable'),
    clusterCidr: cidr.default('10.42.0.0/16'),
    serviceCidr: cidr.default('10.43.0.0/16'),
    secretsEncryption: z.boolean().default(true),
    /** k3s components to disable, e.g. ["traefik", "servicelb"]. */
    disable: z.array(z.enum(['coredns', 'servicelb', 'traefik', 'local-storage', 'metrics-server', 'runtimes'])).default([]),
    /** Download k3s once on this machine, verify it, upload it to each node. */
    airgap: z.boolean().default(false),
    /**
     * Air-gapped: image archives (docker-archive or OCI tar) to put into k3s's images directory on every node,
     * each verified by its sha256. kube-vip's is required with a VIP.
     */
    airgapImages: z
      .array(
        z
          .object({
            image: z.string().min(1),
            file: z.string().min(1),
            sha256: z
              .string()
              .regex(/^[0-9a-f]{64}$/, { message: 'must be the sha256 of the archive (64 lower-case hex digits, as sha256sum prints it)' }),
          })
          .strict(),
      )
      .default([]),
    /** k3s release channel server (install.sh's INSTALL_K3S_CHANNEL_URL). */
    k3sChannelUrl: z.string().url().default('https://update.k3s.io/v1-release/channels'),
    /** k3s release downloads (install.sh's GITHUB_URL): <url>/download/<version>/k3s and sha256sum-<arch>.txt. */
    k3sReleaseUrl: z.string().url().default('https://github.com/k3s-io/k3s/releases'),
    /** The rolling k3s upgrade `up` runs when k3sVersion changes (docs/day2.md). */
    upgrade: z
      .object({
        /** Agents upgraded at once (servers always one at a time). */
        agentBatch: z.number({ message: 'must be a whole number of agents (e.g. 1)' }).int().min(1).max(1000).default(1),
        /** How long `kubectl drain` may take per node before the roll stops. */
        drainTimeoutSeconds: z.number({ message: 'must be a number of seconds (e.g. 300)' }).int().min(10).max(86400).default(300),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The selectable apps (the other keys of `apps` are settings: mode, source, backend). */
export const APP_KEYS = ['pulumiOperator', 'kured', 'piraeus', 'certManager', 'systemUpgradeController'] as const;
export type AppKey = (typeof APP_KEYS)[number];

const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: 'must be a Kubernetes name like "local-path"' });

export const AppsSchema = z
  .object({
    /**
     * local: infra-apps runs from this machine (Automation API, state in the cluster's state dir).
     * operator: the Pulumi Kubernetes Operator runs it from a Stack in the cluster, and keeps it applied.
     */
    mode: z.enum(['local', 'operator'], { message: 'must be "local" or "operator"' }).default('local'),
    /** Operator mode: where the Stack's program comes from. Default: a Program generated from the app selection. */
    source: z
      .object({
        git: z
          .object({
            url: z.string().url({ message: 'must be a git URL like "https://github.com/me/infra-apps.git"' }),
            branch: z.string().default('main'),
            /** Directory of the Pulumi project inside the repository. */
            dir: z.string().default('.'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /** Operator mode: the in-cluster Stack's state backend. Default: a PersistentVolumeClaim mounted into the workspace. */
    backend: z
      .object({
        /** A Pulumi backend URL (s3://…, azblob://…, gs://…, https://app.pulumi.com); replaces the PVC. */
        url: z.string().min(1).optional(),
        /** StorageClass of the state PVC; unset = the cluster's default class (k3s: local-path). */
        storageClass: k8sName.optional(),
        size: z
          .string()
          .regex(/^\d+(Mi|Gi)$/, { message: 'must be a size like "1Gi"' })
          .default('1Gi'),
      })
      .strict()
      .prefault({}),
    pulumiOperator: appToggle(
      z
        .object({
          version: z.string().default('2.9.0'),
          /** Service account the operator's Stack workspaces run as (bound to system:auth-delegator). */
          serviceAccount: z
            .string()
            .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: 'must be a Kubernetes name like "pulumi"' })
            .default('pulumi'),
          /** Also bind it to cluster-admin, so in-cluster stacks can manage cluster-wide infrastructure. */
          clusterAdmin: z.boolean().default(true),
        })
        .strict(),
    ),
    kured: appToggle(
      z
        .object({
          version: z.string().default('6.1.0'),
          /** Reboot window: days and HH:MM times in timeZone. */
          rebootDays: z.array(z.enum(['mo', 'tu', 'we', 'th', 'fr', 'sa', 'su'])).default(['mo', 'tu', 'we', 'th', 'fr', 'sa', 'su']),
          startTime: z
            .string()
            .regex(/^\d{1,2}:\d{2}$/)
            .default('02:00'),
          endTime: z
            .string()
            .regex(/^\d{1,2}:\d{2}$/)
            .default('05:00'),
          timeZone: z.string().default('UTC'),
          drainTimeout: z.string().default('10m'),
          /** Seconds each pod gets to stop while draining (0 = immediately); unset or -1 = the pod's own terminationGracePeriodSeconds. */
          drainGracePeriod: z.number().int().min(-1).optional(),
          /** Reboot even when the drain fails or times out. */
          forceReboot: z.boolean().default(false),
          /** How often kured looks for the reboot sentinel. */
          period: z
            .string()
            .regex(/^(\d+(h|m|s))+$/, { message: 'must be a duration like "1h" or "30m"' })
            .default('1h'),
        })
        .strict(),
    ),
    piraeus: appToggle(
      z
        .object({
          version: z.string().default('2.11.0'),
          replicas: z.number().int().min(1).max(5).default(2),
          defaultStorageClass: z.boolean().default(false),
          poolDirectory: z.string().default('/var/lib/piraeus-datastore/pool1'),
        })
        .strict(),
    ),
    certManager: appToggle(z.object({ version: z.string().default('v1.21.1') }).strict()),
    systemUpgradeController: appToggle(
      z
        .object({
          version: z.string().default('v0.20.1'),
          /** Plans target the cluster's pinned k3s version, or follow this channel URL when set. */
          channel: z.string().url().optional(),
        })
        .strict(),
    ),
  })
  .strict()
  .prefault({});

export const ConfigSchema = z
  .object({
    preset: z.string().optional(),
    cluster: ClusterSchema,
    proxmox: ProxmoxSchema,
    flatcar: FlatcarSchema.prefault({}),
    nodes: NodesSchema.prefault({}),
    apps: AppsSchema,
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type AppsConfig = Config['apps'];
/** Just the selectable apps of `apps`. */
export type AppToggles = Pick<AppsConfig, AppKey>;
export type NodeRole = 'server' | 'agent';

/** Config paths whose values are secrets: never logged, shown or stored in the state file in clear. */
export const SECRET_PATHS = ['proxmox.tokenSecret', 'proxmox.password'] as const;
