/**
 * The node steps: placement, Ignition snippets and the k3s release once; per node (group = node name)
 * clone → vm (configure, resize) → start → ssh → k3s-binary → k3s; then cluster:ready and cluster:kubeconfig.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import type { RunOptions, Step } from '../types.js';
import { placementStep } from './placement.js';
import { hostsStep } from '../template/hosts.js';
import { snippetsStep } from './snippets.js';
import { k3sReleaseStep } from './k3s-release.js';
import { cloneStep } from './clone.js';
import { vmStep } from './vm.js';
import { startStep } from './start.js';
import { sshStep } from './ssh.js';
import { k3sBinaryStep } from './k3s-binary.js';
import { k3sStep } from './k3s.js';
import { clusterReadyStep } from './cluster-ready.js';
import { kubeconfigStep } from './kubeconfig.js';

export function nodeSteps(config: Config, options: RunOptions): Step[] {
  const nodes = planNodes(config);
  // template:hosts (a template on each host with VMs, on local disk storage) needs the placement
  const steps: Step[] = [placementStep(config, options), hostsStep(config, options), snippetsStep(config, options), k3sReleaseStep(config, options)];
  for (const n of nodes) steps.push(cloneStep(config, n, options), vmStep(config, n, options), startStep(config, n, options), sshStep(config, n, options), k3sBinaryStep(config, n, options), k3sStep(config, n, options));
  steps.push(clusterReadyStep(config, options), kubeconfigStep(config, options));
  return steps;
}
