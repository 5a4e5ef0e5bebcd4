/**
 * Review: what will be built, the plan (the same lines `flatcar-k3s plan` prints), where the config is
 * saved so the run can be reproduced with `up --config`, where the secrets are, then confirm.
 */
import { useReducer } from 'react';
import { Box, Text, useInput, useWindowSize } from 'ink';
import Spinner from 'ink-spinner';
import { APP_KEYS, type Config } from '../src/config/schema.js';
import { useTheme } from '../src/ui/theme.js';
import { Footer } from '../src/ui/components/Footer.js';
import { clip } from '../src/ui/format.js';
import { planNodes } from '../src/config/layout.js';
import { placementSummary } from '../src/config/placement.js';
import { APPS } from './AppsScreen.js';

export type ReviewResult = { back: boolean };

export interface ReviewScreenProps {
  config: Config;
  /** undefined while loading; an Error when the plan could not be built. */
  plan?: string[] | Error;
  configPath: string;
  /** Where the secrets will be kept (environment variable or 0600 file). */
  secrets: string;
  /** An error from saving or starting (shown; confirm again to retry). */
  error?: string;
  recreateTemplate?: boolean;
  onSubmit: (r: ReviewResult) => void;
}

export function summarize(c: Config): string[] {
  const n = c.nodes;
  const apps = APP_KEYS.filter((k) => c.apps[k].enabled).map((k) => APPS.find((a) => a.key === k)?.label ?? k);
  return [
    `Cluster ${c.cluster.name}: k3s ${c.cluster.k3sVersion}, ${n.servers.count} server${n.servers.count === 1 ? '' : 's'} (${n.servers.cores} cores, ${n.servers.memory} MiB, ${n.servers.disk} GiB) + ${n.agents.count} agent${n.agents.count === 1 ? '' : 's'} (${n.agents.cores} cores, ${n.agents.memory} MiB, ${n.agents.disk} GiB)`,
    `Proxmox ${c.proxmox.url} as ${c.proxmox.tokenId ?? c.proxmox.username}; nodes ${c.proxmox.nodes.length ? c.proxmox.nodes.join(', ') : 'all online'}; disks on ${c.proxmox.storage.disks}, bridge ${c.proxmox.bridge}`,
    `Flatcar ${c.flatcar.channel} ${c.flatcar.version}; VMIDs ${n.vmids.start}-${n.vmids.end}; network ${n.network.mode === 'static' ? `static ${n.network.cidr} from ${n.network.firstAddress}` : 'DHCP'}${n.vip ? `, VIP ${n.vip}` : ''}`,
    `Apps: ${apps.length ? apps.join(', ') : 'none'}`,
    `Placement: ${placementSummary(planNodes(c), n.placement, c.proxmox.nodes).line}`,
  ];
}

export function ReviewScreen({ config, plan, configPath, secrets, error, recreateTemplate, onSubmit }: ReviewScreenProps) {
  const t = useTheme();
  const { columns, rows } = useWindowSize();
  const lines = Array.isArray(plan) ? plan : [];
  // Summary 4-6 rows, saved-to 2, header/footer 4: the plan gets the rest and scrolls.
  const room = Math.max(3, rows - 19);
  const [top, scroll] = useReducer((x: number, by: number) => Math.max(0, Math.min(Math.max(0, lines.length - room), x + by)), 0);
  useInput((input, key) => {
    if (key.escape) onSubmit({ back: true });
    else if (key.upArrow || input === 'k') scroll(-1);
    else if (key.downArrow || input === 'j') scroll(1);
    else if (key.pageDown || input === ' ') scroll(room);
    else if (key.pageUp) scroll(-room);
    else if (key.return && Array.isArray(plan)) onSubmit({ back: false });
  });
  return (
    <Box flexDirection="column">
      <Text bold>Review</Text>
      {summarize(config).map((l) => (
        <Text key={l} wrap="wrap">
          {l}
        </Text>
      ))}
      {recreateTemplate ? <Text color={t.warn}>The template will be recreated.</Text> : null}
      {(() => {
        const w = placementSummary(planNodes(config), config.nodes.placement, config.proxmox.nodes).warning;
        return w ? (
          <Text color={t.warn} wrap="wrap">
            ⚠ {w}
          </Text>
        ) : null;
      })()}
      <Box flexDirection="column" marginTop={1}>
        <Text color={t.muted}>
          Plan ({lines.length} steps{lines.length > room ? `, ${top + 1}-${Math.min(lines.length, top + room)} shown, ↑↓ to scroll` : ''}):
        </Text>
        {plan === undefined ? (
          <Text color={t.accent}>
            <Spinner /> Building the plan…
          </Text>
        ) : plan instanceof Error ? (
          <Text color={t.error} wrap="wrap">
            ✗ {plan.message}
            {(plan as { fix?: string }).fix ? `\nFix: ${(plan as { fix?: string }).fix}` : ''}
          </Text>
        ) : (
          lines.slice(top, top + room).map((l, i) => <Text key={top + i}>{clip(`  ${l}`, columns)}</Text>)
        )}
      </Box>
      <Box flexDirection="column" marginTop={1}>
        <Text wrap="wrap">
          Config (no secrets) goes to <Text bold>{configPath}</Text>; `flatcar-k3s up --config` it to re-run.
        </Text>
        <Text wrap="wrap">Secrets: {secrets}.</Text>
      </Box>
      {error ? (
        <Text color={t.error} wrap="wrap">
          ✗ {error}
        </Text>
      ) : null}
      <Footer
        keys={[
          ['Enter', 'save and build'],
          ['↑↓', 'scroll plan'],
          ['Esc', 'back'],
        ]}
      />
    </Box>
  );
}
