/**
 * Bench: the live Run screen under a log flood. 12 nodes each emit 1,000 lines/s for 10 s through the
 * real RunStore and RunScreen, rendered by Ink into a fake 80x24 terminal, while every event goes to
 * the log file (src/log/file.ts). Prints CPU time per second of wall time, peak RSS, frames rendered
 * and bytes written, and checks that no line is missing from the log file (exit 1 if any is).
 *   node --import tsx scripts/bench/ui.ts [--nodes 12] [--rate 1000] [--seconds 10]
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RunEvents } from '../../src/events.js';
import { LogFile } from '../../src/log/file.js';
import { FRAME_MS, RunStore } from '../../src/ui/run-store.js';

// Like runInteractive: React's production build unless NODE_ENV says otherwise.
process.env.NODE_ENV ??= 'production';
const [{ createElement }, { render }, { RunScreen }] = await Promise.all([
  import('react'),
  import('ink'),
  import('../../screens/RunScreen.js'),
]);

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    nodes: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'no-ui': { type: 'boolean' },
  },
});
/** --no-ui: the same flood into the log file only, to see what the screen itself costs. */
const UI = !values['no-ui'];
const NODES = Number(values.nodes ?? 12);
const RATE = Number(values.rate ?? 1000);
const SECONDS = Number(values.seconds ?? 10);

class FakeTerminal extends EventEmitter {
  columns = 80;
  rows = 24;
  isTTY = true;
  bytes = 0;
  writes = 0;
  write = (s: string): boolean => {
    this.bytes += s.length;
    this.writes++;
    return true;
  };
}
class FakeInput extends EventEmitter {
  isTTY = true;
  setRawMode() {}
  setEncoding() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
  read() {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'fk3s-bench-ui-'));
const logPath = join(dir, 'run.log');
const events = new RunEvents();
const log = new LogFile(logPath);
const detachLog = log.attach(events);
const store = new RunStore();
if (UI) events.onEvent(store.ingest);

const stdout = new FakeTerminal();
let frames = 0;
const app = UI
  ? render(createElement(RunScreen, { store, cluster: 'bench', logFile: logPath, onSubmit: () => {} }), {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: new FakeInput() as unknown as NodeJS.ReadStream,
      stderr: new FakeTerminal() as unknown as NodeJS.WriteStream,
      interactive: true,
      patchConsole: false,
      exitOnCtrlC: false,
      maxFps: 15,
      onRender: () => {
        frames++;
      },
    })
  : undefined;

let peakRss = process.memoryUsage().rss;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

const ids = Array.from({ length: NODES }, (_, i) => `bench-node-${i + 1}`);
const t0 = Date.now();
events.emitEvent({ type: 'plan', steps: ids.map((g) => ({ id: `node:${g}:boot`, title: 'Boot and join', group: g, status: 'pending' })) });
events.emitEvent({ type: 'run', status: 'started', at: t0 });
for (const g of ids) events.emitEvent({ type: 'step', id: `node:${g}:boot`, title: 'Boot and join', group: g, status: 'running', at: t0 });

const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const perNode = RATE * SECONDS;
const sent = new Array<number>(NODES).fill(0);
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    const due = Math.min(perNode, Math.floor(((performance.now() - wall0) / 1000) * RATE));
    const at = Date.now();
    for (let n = 0; n < NODES; n++) {
      const g = ids[n]!;
      for (; sent[n]! < due; sent[n]!++) {
        events.emitEvent({
          type: 'log',
          id: `node:${g}:boot`,
          group: g,
          line: `${g} line ${String(sent[n]).padStart(6, '0')} [ 12.345678] systemd[1]: Started something on the node`,
          level: 'info',
          at,
        });
      }
    }
    if (sent.every((x) => x >= perNode)) {
      clearInterval(tick);
      resolve();
    }
  }, 10);
});
const wall = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
for (const g of ids)
  events.emitEvent({ type: 'step', id: `node:${g}:boot`, title: 'Boot and join', group: g, status: 'done', via: 'run', at: Date.now() });
events.emitEvent({ type: 'run', status: 'succeeded', at: Date.now() });
store.close();
await new Promise((r) => setTimeout(r, 100));
app?.unmount();
clearInterval(rssTimer);
detachLog();
log.close();

// Every line must be in the log file, once.
const text = readFileSync(logPath, 'utf8');
const seen = new Array<number>(NODES).fill(0);
const re = /bench-node-(\d+) line (\d{6}) /g;
for (let m = re.exec(text); m; m = re.exec(text)) seen[Number(m[1]) - 1]!++;
const missing = seen.reduce((a, c) => a + Math.max(0, perNode - c), 0);
const cpuSec = (cpu.user + cpu.system) / 1e6;
const total = NODES * perNode;
console.log(
  `ui: ${NODES} nodes x ${RATE} lines/s x ${SECONDS} s = ${total} lines ${UI ? 'through the Run screen' : 'into the log file only (--no-ui)'} (80x24, maxFps 15, store ${Math.round(1000 / FRAME_MS)} fps, NODE_ENV=${process.env.NODE_ENV})`,
);
console.log(`  wall ${wall.toFixed(2)} s, CPU ${cpuSec.toFixed(2)} s = ${(cpuSec / wall).toFixed(3)} CPU-s per wall-s`);
console.log(`  peak RSS ${(peakRss / 2 ** 20).toFixed(1)} MiB`);
console.log(
  `  frames rendered ${frames} (${(frames / wall).toFixed(1)}/s), ${stdout.writes} writes, ${(stdout.bytes / 2 ** 20).toFixed(2)} MiB to the terminal`,
);
console.log(
  `  log file ${(text.length / 2 ** 20).toFixed(1)} MiB: ${missing === 0 ? `all ${total} lines present` : `${missing} lines MISSING`}`,
);
if (process.argv.includes('--json'))
  console.log(`BENCH_JSON ${JSON.stringify({ ui_cores: Number((cpuSec / wall).toFixed(3)), ui_lines_missing: missing })}`);
rmSync(dir, { recursive: true, force: true });
process.exit(missing === 0 ? 0 : 1);
