/** Where the user is in the wizard: Start › Proxmox › … with the current screen in bold. */
import { Text } from 'ink';

const TITLES: Array<[string, string]> = [
  ['start', 'Start'],
  ['proxmox', 'Proxmox'],
  ['flatcar', 'Flatcar'],
  ['nodes', 'Nodes'],
  ['apps', 'Apps'],
  ['review', 'Review'],
  ['run', 'Build'],
];

export function Breadcrumb({ current }: { current: string }) {
  return (
    <Text wrap="truncate-end">
      {TITLES.map(([k, title], i) => (
        <Text key={k} bold={k === current} dimColor={k !== current}>
          {i ? ' › ' : ''}
          {title}
        </Text>
      ))}
    </Text>
  );
}
