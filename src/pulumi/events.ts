/**
 * Pulumi engine events → log lines for the runner (ctx.log), so the UI's live panes show which resource
 * is being created, its status messages and the diagnostics. Pure: no Pulumi runtime import.
 */
import type { EngineEvent, OpType, StepEventMetadata } from '@pulumi/pulumi/automation/index.js';

export type LogLevel = 'info' | 'warn' | 'error' | 'debug';
export interface LogLine {
  line: string;
  level: LogLevel;
}

const PRESENT: Partial<Record<OpType, string>> = {
  create: 'creating',
  update: 'updating',
  delete: 'deleting',
  replace: 'replacing',
  'create-replacement': 'creating replacement for',
  'delete-replaced': 'deleting replaced',
  read: 'reading',
  refresh: 'refreshing',
  import: 'importing',
};
const PAST: Partial<Record<OpType, string>> = {
  create: 'created',
  update: 'updated',
  delete: 'deleted',
  replace: 'replaced',
  'create-replacement': 'created replacement for',
  'delete-replaced': 'deleted replaced',
  read: 'read',
  refresh: 'refreshed',
  import: 'imported',
};
const SUMMARY_ORDER: OpType[] = ['create', 'update', 'replace', 'delete', 'same'];
const SUMMARY_WORD: Partial<Record<OpType, string>> = {
  create: 'created',
  update: 'updated',
  replace: 'replaced',
  delete: 'deleted',
  same: 'unchanged',
};

/** "urn:pulumi:stack::project::kubernetes:helm.sh/v3:Release::kured" → "kured". */
export function urnName(urn: string | undefined): string {
  if (!urn) return '';
  const i = urn.lastIndexOf('::');
  return i >= 0 ? urn.slice(i + 2) : urn;
}

/** "kubernetes:helm.sh/v3:Release" → "Release"; "pulumi:providers:kubernetes" → "provider kubernetes". */
export function shortType(type: string): string {
  if (type.startsWith('pulumi:providers:')) return `provider ${type.slice('pulumi:providers:'.length)}`;
  const last = type.split(':').pop() ?? type;
  return last;
}

/** Drop ANSI escapes and Pulumi's own colour markup (<{%fg 1%}>, <{%reset%}>). */
export function stripColor(s: string): string {
  return s.replace(/<\{%[^%]*%\}>/g, '').replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

function what(m: StepEventMetadata): string {
  return `${shortType(m.type)} ${urnName(m.urn)}`;
}

/** One engine event → zero or more log lines. Unchanged resources and the stack itself go to debug. */
export function describeEngineEvent(e: EngineEvent): LogLine[] {
  if (e.preludeEvent) return [{ line: 'Pulumi: computing changes', level: 'info' }];
  if (e.resourcePreEvent) {
    const m = e.resourcePreEvent.metadata;
    if (m.type === 'pulumi:pulumi:Stack') return [];
    if (m.op === 'same' || e.resourcePreEvent.planning)
      return [{ line: `= ${what(m)}${m.op === 'same' ? ' unchanged' : ` (${m.op} planned)`}`, level: 'debug' }];
    return [{ line: `${opSign(m.op)} ${PRESENT[m.op] ?? m.op} ${what(m)}`, level: 'info' }];
  }
  if (e.resOutputsEvent) {
    const m = e.resOutputsEvent.metadata;
    if (m.type === 'pulumi:pulumi:Stack') return [];
    if (m.op === 'same' || e.resOutputsEvent.planning) return [];
    return [{ line: `✓ ${PAST[m.op] ?? m.op} ${what(m)}`, level: 'info' }];
  }
  if (e.resOpFailedEvent) {
    const m = e.resOpFailedEvent.metadata;
    return [{ line: `✗ ${m.op} failed: ${what(m)}`, level: 'error' }];
  }
  if (e.diagnosticEvent) {
    const d = e.diagnosticEvent;
    const level: LogLevel = d.severity === 'error' ? 'error' : d.severity === 'warning' ? 'warn' : 'info';
    // Name the resource the message is about (provider status lines such as "Waiting for …"), not the stack.
    const prefix = d.urn && !d.urn.includes('::pulumi:pulumi:Stack::') ? `${urnName(d.urn)}: ` : '';
    return stripColor(d.message)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map((l) => ({ line: `${prefix}${l}`, level }));
  }
  if (e.summaryEvent) {
    const s = e.summaryEvent;
    const counts = SUMMARY_ORDER.filter((op) => (s.resourceChanges[op] ?? 0) > 0).map(
      (op) => `${s.resourceChanges[op]} ${SUMMARY_WORD[op]}`,
    );
    const lines: LogLine[] = [
      { line: `Pulumi: done in ${Math.round(s.durationSeconds)} s${counts.length ? ` — ${counts.join(', ')}` : ''}`, level: 'info' },
    ];
    if (s.maybeCorrupt)
      lines.push({ line: 'Pulumi: some resources may be in an invalid state; run the apps again to reconcile them', level: 'warn' });
    return lines;
  }
  if (e.policyEvent)
    return [
      {
        line: `policy ${e.policyEvent.policyName}: ${stripColor(e.policyEvent.message).trim()}`,
        level: e.policyEvent.enforcementLevel === 'mandatory' ? 'error' : 'warn',
      },
    ];
  if (e.stdoutEvent) {
    const msg = stripColor(e.stdoutEvent.message).trim();
    return msg ? [{ line: msg, level: 'debug' }] : [];
  }
  return [];
}

function opSign(op: OpType): string {
  if (op === 'create' || op === 'create-replacement' || op === 'import') return '+';
  if (op === 'delete' || op === 'delete-replaced') return '-';
  if (op === 'replace') return '±';
  return '~';
}

/** Counts resource steps as they finish, for a progress fraction (total from the preview when known). */
export interface EngineEventSinkOptions {
  log(line: string, level: LogLevel): void;
  progress?(message: string, fraction?: number): void;
  /** Expected number of resource steps that change something (from a preview). */
  expectedSteps?: number;
}

export function engineEventSink(opts: EngineEventSinkOptions): (e: EngineEvent) => void {
  let done = 0;
  return (e) => {
    for (const l of describeEngineEvent(e)) opts.log(l.line, l.level);
    if (
      e.resOutputsEvent &&
      !e.resOutputsEvent.planning &&
      e.resOutputsEvent.metadata.op !== 'same' &&
      e.resOutputsEvent.metadata.type !== 'pulumi:pulumi:Stack'
    ) {
      done++;
      const total = opts.expectedSteps;
      opts.progress?.(`${done}${total ? `/${total}` : ''} resources changed`, total ? Math.min(1, done / total) : undefined);
    }
  };
}
