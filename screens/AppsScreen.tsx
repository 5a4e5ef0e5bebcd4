/** Apps: which in-cluster apps to install, one line each on what it does, and whether Pulumi is available. */
import { Box, Text, useInput } from 'ink';
import { useRef, useState } from 'react';
import { useTheme } from '../src/ui/theme.js';
import { CheckList } from '../src/ui/components/CheckList.js';
import { Footer } from '../src/ui/components/Footer.js';

export const APPS = [
  { key: 'pulumiOperator', label: 'Pulumi Kubernetes Operator', hint: '— runs Pulumi stacks from inside the cluster (GitOps)' },
  { key: 'kured', label: 'kured', hint: '— reboots nodes one at a time after a Flatcar update' },
  { key: 'piraeus', label: 'Piraeus (LINSTOR)', hint: '— replicated block storage across the nodes' },
  { key: 'certManager', label: 'cert-manager', hint: '— issues and renews TLS certificates' },
  { key: 'systemUpgradeController', label: 'system-upgrade-controller', hint: '— upgrades k3s on the nodes by plan' },
] as const;

export type AppKey = (typeof APPS)[number]['key'];

export type AppsResult = { back: boolean; apps: Record<AppKey, boolean> };

export interface AppsScreenProps {
  initial: AppKey[];
  pulumiAvailable: boolean | string;
  /** Checks a selection against the rest of the config (e.g. piraeus replicas vs node count). */
  validate?: (apps: Record<AppKey, boolean>) => string | undefined;
  onSubmit: (r: AppsResult) => void;
}

const toRecord = (checked: AppKey[]) => Object.fromEntries(APPS.map((a) => [a.key, checked.includes(a.key)])) as Record<AppKey, boolean>;

export function AppsScreen({ initial, pulumiAvailable, validate, onSubmit }: AppsScreenProps) {
  const t = useTheme();
  const current = useRef<AppKey[]>(initial);
  const [problem, setProblem] = useState<string | undefined>(() => validate?.(toRecord(initial)));
  useInput((_input, key) => {
    if (key.escape) onSubmit({ back: true, apps: toRecord(current.current) });
  });
  return (
    <Box flexDirection="column">
      <Text bold>Apps to install in the cluster</Text>
      <Box marginY={1} flexDirection="column">
        <CheckList<AppKey>
          items={APPS.map((a) => ({ key: a.key, label: a.label, hint: a.hint }))}
          initial={initial}
          onToggle={(c) => {
            current.current = c;
            setProblem(validate?.(toRecord(c)));
          }}
          onSubmit={(c) => {
            const why = validate?.(toRecord(c));
            if (why) setProblem(why);
            else onSubmit({ back: false, apps: toRecord(c) });
          }}
        />
      </Box>
      {problem ? (
        <Text color={t.error} wrap="wrap">
          ✗ {problem}
        </Text>
      ) : null}
      {pulumiAvailable ? (
        <Text color={t.ok}>
          ✔ Pulumi CLI found{typeof pulumiAvailable === 'string' ? ` (${pulumiAvailable})` : ''}: the apps are installed with Pulumi.
        </Text>
      ) : (
        <Text color={t.warn} wrap="wrap">
          ⚠ Pulumi CLI not found: the app steps will be skipped. Install it (https://www.pulumi.com/docs/install/) and run again to add
          them; nothing else depends on it.
        </Text>
      )}
      <Footer
        keys={[
          ['↑↓', 'move'],
          ['Space', 'toggle'],
          ['Enter', 'next'],
          ['Esc', 'back'],
        ]}
      />
    </Box>
  );
}
