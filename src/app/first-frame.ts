/**
 * The first screen, drawn before ink and React load (they are most of the start-up: ink's layout engine
 * compiles WebAssembly): the alternate screen with the Start screen's header, question and preset list
 * as plain ANSI text, from the preset files alone. Ink then draws the same screen over it and takes the
 * keyboard; keys typed meanwhile wait in the terminal (raw mode, so they are not echoed). Nothing
 * heavy is imported here: node:fs and the package paths only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { presetsDir } from '../paths.js';

const CRUMBS = ['Start', 'Proxmox', 'Flatcar', 'Nodes', 'Apps', 'Review', 'Build'];

/** Presets as the Start screen lists them: homelab, ha, the others, then custom. */
function presets(): Array<{ name: string; summary: string }> {
  const first = ['homelab', 'ha'];
  const names = readdirSync(presetsDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort((a, b) => (first.indexOf(a) + 1 || 99) - (first.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const out = names.map((name) => {
    const text = readFileSync(join(presetsDir(), `${name}.yaml`), 'utf8');
    const line = /^#\s*(?:[\w-]+:\s*)?(.+)$/m.exec(text)?.[1] ?? '';
    return { name, summary: line.replace(/[,.;]\s*$/, '') };
  });
  out.push({ name: 'custom', summary: 'start from the defaults and choose every value' });
  return out;
}

/** The frame's text (exported for the test); `color` false under NO_COLOR. */
export function firstFrameText(o: { columns: number; color: boolean; clustersDir?: string }): string {
  const sgr = (code: string, s: string) => (o.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const fit = (s: string) => (s.length > o.columns - 1 ? s.slice(0, o.columns - 2) + '…' : s);
  const lines: string[] = [];
  const crumbs = CRUMBS.join(' › ');
  lines.push(
    crumbs.length > o.columns - 1 ? sgr('2', fit(crumbs)) : CRUMBS.map((c, i) => (i === 0 ? sgr('1', c) : sgr('2', ` › ${c}`))).join(''),
  );
  lines.push(sgr('1', fit('flatcar-k3s — k3s on Flatcar Container Linux VMs on Proxmox VE')), '');
  // With clusters in the state dir the screen may offer to resume one: that part waits for the UI.
  const known = o.clustersDir !== undefined && existsSync(o.clustersDir) && readdirSync(o.clustersDir).length > 0;
  if (!known) {
    lines.push(fit('Choose a starting point (every value can be changed on the next screens):'));
    const items = [
      ...presets().map((p) => ({ label: p.name, hint: `— ${p.summary}` })),
      { label: 'Load a config file…', hint: '— a YAML file as `up --config` takes' },
    ];
    items.forEach((it, i) => {
      const text = `${i === 0 ? '❯ ' : '  '}${it.label} ${it.hint}`;
      const shown = text.length > o.columns - 1 ? text.slice(0, o.columns - 2) + '…' : text;
      const label = shown.slice(0, 2 + it.label.length);
      const rest = shown.slice(label.length);
      lines.push(i === 0 ? sgr('36', label) + sgr('90', rest) : label + sgr('90', rest));
    });
    lines.push('', sgr('90', fit('Nothing is changed on Proxmox before the Review screen.')));
  }
  return lines.join('\r\n');
}

/** Enter the alternate screen and draw the first frame; the cursor goes back home for Ink. */
export function drawFirstFrame(o: {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
  clustersDir: string;
}): void {
  const color = !(o.env.NO_COLOR !== undefined && o.env.NO_COLOR !== '');
  try {
    o.stdin.setRawMode?.(true);
  } catch {
    /* not a terminal after all: Ink says so */
  }
  o.stdout.write(
    `\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J${firstFrameText({ columns: o.stdout.columns || 80, color, clustersDir: o.clustersDir })}\x1b[H`,
  );
}

/** Leave the alternate screen again (the UI failed to start). */
export function undoFirstFrame(stdout: NodeJS.WriteStream): void {
  stdout.write('\x1b[?25h\x1b[?1049l');
}
