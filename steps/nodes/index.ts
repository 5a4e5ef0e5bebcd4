/**
 * The node steps: placement, Ignition snippets and the k3s release once; per node (group = node name)
 * clone → vm (configure, resize) → start → ssh → k3s-binary → k3s → k3s-roll (the rolling upgrade, servers one
 * at a time, then agents in batches); then cluster:ready and cluster:kubeconfig.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodesKeeping } from '../../src/config/layout.js';
import { recordedLayout } from './recorded-layout.js';
import type { RunOptions, SavedRun, Step } from '../types.js';
import { placementStep } from './placement.js';
import { hostsStep } from './host-templates.js';
import { snippetsStep } from './snippets.js';
import { k3sReleaseStep } from './k3s-release.js';
import { cloneStep } from './clone.js';
import { vmStep } from './vm.js';
import { startStep } from './start.js';
import { sshStep } from './ssh.js';
import { k3sBinaryStep } from './k3s-binary.js';
import { k3sStep } from './k3s.js';
import { k3sRollStep } from './k3s-roll.js';
import { clusterReadyStep } from './cluster-ready.js';
import { kubeconfigStep } from './kubeconfig.js';

export function nodeSteps(config: Config, options: RunOptions, saved?: SavedRun): Step[] {
  // nodes built before keep their VMIDs and addresses (a raised server count does not move the agents)
  const nodes = planNodesKeeping(config, recordedLayout(saved));
  // template:hosts (a template on each host with VMs, on local disk storage) needs the placement
  const steps: Step[] = [
    placementStep(config, options),
    hostsStep(config, options),
    snippetsStep(config, options, nodes),
    k3sReleaseStep(config, options),
  ];
  for (const n of nodes) {
    steps.push(cloneStep(config, n, options), vmStep(config, n, options), startStep(config, n, options), sshStep(config, n, options));
    steps.push(k3sBinaryStep(config, n, options), k3sStep(config, n, options), k3sRollStep(config, n, options));
  }
  steps.push(clusterReadyStep(config, options), kubeconfigStep(config, options));
  return steps;
}
