/** Done: where the kubeconfig is, the command to try, the API address, what was installed, how long it took. */
import { Box, Text, useInput } from 'ink';
import { useTheme } from '../src/ui/theme.js';
import { Footer } from '../src/ui/components/Footer.js';
import { formatDuration } from '../src/ui/format.js';

export interface DoneScreenProps {
  cluster: string;
  kubeconfigPath?: string;
  server?: string;
  installed: string[];
  /** E.g. apps the run skipped and why. */
  note?: string;
  elapsedMs: number;
  configPath?: string;
  onSubmit: () => void;
}

export function DoneScreen({ cluster, kubeconfigPath, server, installed, note, elapsedMs, configPath, onSubmit }: DoneScreenProps) {
  const t = useTheme();
  useInput((input, key) => {
    if (key.return || key.escape || input === 'q') onSubmit();
  });
  return (
    <Box flexDirection="column">
      <Text bold color={t.ok}>
        ✔ Cluster {cluster} is ready ({formatDuration(elapsedMs)})
      </Text>
      <Box flexDirection="column" marginY={1}>
        <Text wrap="wrap">Kubeconfig: {kubeconfigPath ?? '(not written)'}</Text>
        {kubeconfigPath ? (
          <Text wrap="wrap">
            Try: <Text bold>kubectl --kubeconfig {kubeconfigPath} get nodes -o wide</Text>
          </Text>
        ) : null}
        <Text wrap="wrap">API server: {server ?? '(unknown)'}</Text>
        <Text wrap="wrap">Installed: k3s{installed.length ? `, ${installed.join(', ')}` : ''}</Text>
        {note ? (
          <Text color={t.warn} wrap="wrap">
            {note}
          </Text>
        ) : null}
        {configPath ? (
          <Text wrap="wrap">
            Config: {configPath} (run `flatcar-k3s up --config {configPath}` to converge again)
          </Text>
        ) : null}
      </Box>
      <Footer keys={[['Enter/q', 'exit']]} />
    </Box>
  );
}
