/**
 * kube-vip as a k3s auto-deployed manifest (/var/lib/rancher/k3s/server/manifests/): RBAC plus a
 * DaemonSet on control-plane nodes announcing the VIP by ARP with leader election. Equivalent to
 * `kube-vip manifest daemonset --interface <if> --address <VIP> --inCluster --taint --controlplane
 * --arp --leaderElection` plus kube-vip.io/manifests/rbac.yaml, generated here so nothing is fetched.
 */
import { stringify } from 'yaml';

export const KUBE_VIP_IMAGE = 'ghcr.io/kube-vip/kube-vip:v1.2.3';
export const KUBE_VIP_MANIFEST_NAME = 'flatcar-k3s-kube-vip.yaml';

export interface KubeVipOptions {
  vip: string;
  interface: string;
  image?: string;
  port?: number;
}

export function kubeVipObjects(o: KubeVipOptions): Array<Record<string, unknown>> {
  const image = o.image ?? KUBE_VIP_IMAGE;
  const env = (name: string, value: string) => ({ name, value });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'kube-vip', namespace: 'kube-system' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:kube-vip-role', annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
      rules: [
        { apiGroups: [''], resources: ['services/status'], verbs: ['update'] },
        { apiGroups: [''], resources: ['services', 'endpoints'], verbs: ['list', 'get', 'watch', 'update'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'get', 'watch', 'update', 'patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'get', 'watch', 'update', 'create'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'get', 'watch', 'update'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:kube-vip-binding' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kube-vip-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'kube-vip', namespace: 'kube-system' }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'kube-vip-ds', namespace: 'kube-system', labels: { 'app.kubernetes.io/name': 'kube-vip-ds' } },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'kube-vip-ds' } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'kube-vip-ds' } },
          spec: {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    { matchExpressions: [{ key: 'node-role.kubernetes.io/master', operator: 'Exists' }] },
                    { matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] },
                  ],
                },
              },
            },
            containers: [
              {
                name: 'kube-vip',
                image,
                imagePullPolicy: 'IfNotPresent',
                args: ['manager'],
                env: [
                  env('vip_arp', 'true'),
                  env('port', String(o.port ?? 6443)),
                  { name: 'vip_nodename', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  env('vip_interface', o.interface),
                  // kube-vip >= v0.9 reads vip_subnet (vip_cidr is ignored): a /32 for the single control-plane address.
                  env('vip_subnet', '32'),
                  env('dns_mode', 'first'),
                  env('cp_enable', 'true'),
                  env('cp_namespace', 'kube-system'),
                  env('svc_enable', 'false'),
                  env('vip_leaderelection', 'true'),
                  env('vip_leasename', 'plndr-cp-lock'),
                  env('vip_leaseduration', '5'),
                  env('vip_renewdeadline', '3'),
                  env('vip_retryperiod', '1'),
                  env('address', o.vip),
                ],
                securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
              },
            ],
            hostNetwork: true,
            serviceAccountName: 'kube-vip',
            tolerations: [
              { effect: 'NoSchedule', operator: 'Exists' },
              { effect: 'NoExecute', operator: 'Exists' },
            ],
          },
        },
      },
    },
  ];
}

/** Multi-document YAML for the manifests directory. */
export function kubeVipManifest(o: KubeVipOptions): string {
  return (
    '# Written by flatcar-k3s: kube-vip announces the control-plane VIP ' +
    o.vip +
    '\n' +
    kubeVipObjects(o)
      .map((d) => stringify(d, { lineWidth: 0 }))
      .join('---\n')
  );
}
