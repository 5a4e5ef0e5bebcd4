/**
 * The wizard: holds the state in a reducer, shows one screen at a time, and talks to the rest of the
 * program only through UiServices. The run itself is the runner's: the app feeds its events to a
 * RunStore and aborts its signal to quit safely.
 */
import { useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { Box, useInput } from 'ink';
import type { Config } from '../config/schema.js';
import { resolveConfig } from '../config/load.js';
import { EXIT } from '../errors.js';
import { initialState, mergeDraft, wizard, draftGet, type Plain, type WizardAction, type WizardState } from '../ui/state.js';
import type { UiServices } from '../ui/types.js';
import { checkDraft, withPreset } from '../ui/validate.js';
import { RunStore } from '../ui/run-store.js';
import { ThemeContext, type Theme } from '../ui/theme.js';
import { StartScreen, type StartChoice } from '../../screens/StartScreen.js';
import { ProxmoxScreen, type ProxmoxInitial } from '../../screens/ProxmoxScreen.js';
import { FlatcarScreen } from '../../screens/FlatcarScreen.js';
import { NodesScreen } from '../../screens/NodesScreen.js';
import { AppsScreen, APPS, type AppKey } from '../../screens/AppsScreen.js';
import { ReviewScreen } from '../../screens/ReviewScreen.js';
import { RunScreen, type RunAction } from '../../screens/RunScreen.js';
import { DoneScreen } from '../../screens/DoneScreen.js';
import { Breadcrumb } from '../ui/components/Breadcrumb.js';
import { ReviewError } from '../ui/components/ReviewError.js';

export interface AppProps {
  services: UiServices;
  theme: Theme;
  /** Called once with the exit code (and lines to print after the full-screen UI closes). */
  onExit: (code: number, message?: string) => void;
  /** A config file given on the command line: start from it. */
  configPath?: string;
  /** Aborted on SIGTERM/SIGHUP: stop like "q" (a running run is stopped safely first). */
  stop?: AbortSignal;
  now?: () => number;
}

function fillMissing(base: Plain, fill: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(fill)) {
    const cur = out[k];
    if (cur === undefined) out[k] = v;
    else if (cur && v && typeof cur === 'object' && typeof v === 'object' && !Array.isArray(cur) && !Array.isArray(v))
      out[k] = fillMissing(cur as Plain, v as Plain);
  }
  return out;
}

function errorText(err: unknown): string {
  const e = err as { message?: string; fix?: string };
  return `${e?.message ?? String(err)}${e?.fix ? `\nFix: ${e.fix}` : ''}`;
}

export function App({ services, theme, onExit, configPath, stop, now = Date.now }: AppProps) {
  const [s, dispatch] = useReducer(wizard, undefined, () => initialState({}));
  const store = useMemo(() => new RunStore(), []);
  const exited = useRef(false);
  const exit = (code: number, message?: string) => {
    if (exited.current) return;
    exited.current = true;
    store.close();
    onExit(code, message);
  };
  useEffect(() => () => store.close(), [store]);

  const { reviewConfig, plan } = useReviewPlan(services, s);
  const config = s.config ?? (reviewConfig instanceof Error ? undefined : reviewConfig);
  const runs = useRunControl({ services, s, dispatch, store, now, exit, config });
  const { onStart, fileError } = useStart({ services, s, dispatch, exit, configPath, startRun: runs.startRun });

  const quitRef = useRef<() => void>(() => {});
  quitRef.current = () => (s.screen === 'run' ? runs.onRunAction('quit') : exit(EXIT.interrupted));
  useEffect(() => {
    if (!stop) return;
    const onStop = () => quitRef.current();
    if (stop.aborted) onStop();
    stop.addEventListener('abort', onStop, { once: true });
    return () => stop.removeEventListener('abort', onStop);
  }, [stop]);

  // Ctrl-C anywhere: quit; during a run the same safe stop as "q".
  useInput((input, key) => {
    if (key.ctrl && input === 'c') {
      if (s.screen === 'run') runs.onRunAction('quit');
      else exit(EXIT.interrupted);
    }
  });

  const screen = screenFor({ s, dispatch, services, fileError, onStart, reviewConfig, plan, store, config, runs, now, exit });
  return (
    <ThemeContext.Provider value={theme}>
      <Box flexDirection="column">
        {s.screen !== 'run' && s.screen !== 'done' ? <Breadcrumb current={s.screen} /> : null}
        {screen}
      </Box>
    </ThemeContext.Provider>
  );
}

type Dispatch = (a: WizardAction) => void;
type Exit = (code: number, message?: string) => void;

/** Start: open a config file (given on the command line or chosen), a preset, or a saved cluster. */
interface StartArgs {
  services: UiServices;
  s: WizardState;
  dispatch: Dispatch;
  exit: Exit;
  configPath?: string;
  startRun: (config: Config, draft: Plain) => void;
}

function useStart(o: StartArgs) {
  const { services, s, dispatch, exit, configPath, startRun } = o;
  const [fileError, setFileError] = useState<{ path: string; message: string }>();
  const openFile = async (path: string) => {
    try {
      const raw = await services.readConfigFile(path);
      setFileError(undefined);
      dispatch({ type: 'begin', draft: mergeDraft(fillMissing(raw, services.prefill), services.overridesFor(raw)), screen: 'proxmox' });
    } catch (err) {
      setFileError({ path, message: errorText(err) });
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: opens the --config file once, on mount
  useEffect(() => {
    if (configPath) void openFile(configPath);
  }, []);

  const onStart = async (c: StartChoice) => {
    if (c.kind === 'quit') return exit(EXIT.ok);
    if (c.kind === 'file') return openFile(c.path);
    if (c.kind === 'preset') {
      // Back on Start and the same choice again: keep everything typed so far.
      const same = c.name === 'custom' ? s.draft.preset === undefined && Object.keys(s.draft).length > 0 : s.draft.preset === c.name;
      if (same) return dispatch({ type: 'next', screen: 'proxmox' });
      const base: Plain = c.name === 'custom' ? { cluster: { name: 'k3s' } } : { preset: c.name };
      return dispatch({
        type: 'begin',
        draft: mergeDraft(fillMissing(base, services.prefill), services.overridesFor(base)),
        screen: 'proxmox',
      });
    }
    // Resume / open: the saved config plus the saved (or environment) secrets.
    const known = c.kind === 'open' ? c.cluster : c.run;
    let draft: Plain = {};
    try {
      if (known.configPath) draft = await services.readConfigFile(known.configPath);
    } catch (err) {
      return setFileError({ path: known.configPath ?? '', message: errorText(err) });
    }
    draft = mergeDraft(
      fillMissing(mergeDraft(draft, services.savedSecrets(known.clusterDir)), services.prefill),
      services.overridesFor(draft),
    );
    if (c.kind === 'open') {
      // Straight to Review; Esc walks back through every screen to change something.
      return dispatch({ type: 'begin', draft, screen: 'review', history: ['start', 'proxmox', 'flatcar', 'nodes', 'apps'] });
    }
    // Resume: straight to the run when the config is complete.
    const r = c.run;
    try {
      const config = resolveConfig(draft, { env: services.env });
      dispatch({ type: 'begin', draft, screen: 'review', resume: r });
      startRun(config, draft);
    } catch (err) {
      dispatch({
        type: 'begin',
        draft,
        screen: 'proxmox',
        resume: r,
        notice: `Resuming ${r.cluster}: the saved config needs more before it can run:\n${((err as Error).message ?? String(err)).split('\n').slice(1).join('\n')}`,
      });
    }
  };
  return { onStart, fileError };
}

/** Review: the config resolved from the draft, and the plan lines the runner describes for it. */
function useReviewPlan(services: UiServices, s: WizardState): { reviewConfig?: Config | Error; plan?: string[] | Error } {
  const [plan, setPlan] = useState<string[] | Error>();
  // biome-ignore lint/correctness/useExhaustiveDependencies: `services` is fixed for the app's life; the config changes only with the screen and the draft
  const reviewConfig = useMemo((): Config | Error | undefined => {
    if (s.screen !== 'review') return undefined;
    try {
      return resolveConfig(s.draft, { env: services.env });
    } catch (err) {
      return err as Error;
    }
  }, [s.screen, s.draft]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `services` is fixed for the app's life; the plan follows the resolved config
  useEffect(() => {
    setPlan(undefined);
    if (!reviewConfig || reviewConfig instanceof Error) return;
    let live = true;
    services.describePlan(reviewConfig).then(
      (lines) => live && setPlan(lines),
      (err) => live && setPlan(err instanceof Error ? err : new Error(String(err))),
    );
    return () => {
      live = false;
    };
  }, [reviewConfig]);
  return { reviewConfig, plan };
}

type RunControl = ReturnType<typeof useRunControl>;

/** The run: start it (saving the config first), stop it safely on "q", retry it after a failure. */
interface RunArgs {
  services: UiServices;
  s: WizardState;
  dispatch: Dispatch;
  store: RunStore;
  now: () => number;
  exit: Exit;
  config?: Config;
}

function useRunControl(o: RunArgs) {
  const { services, s, dispatch, store, now, exit, config } = o;
  const [stopping, setStopping] = useState(false);
  const run = useRef<{ controller: AbortController; done: Promise<void> } | undefined>(undefined);
  const startRun = (config: Config, draft: Plain) => {
    if (run.current) return;
    const controller = new AbortController();
    dispatch({ type: 'run-started', at: now(), config });
    const done = (async () => {
      try {
        if (!s.saved || s.config !== config) dispatch({ type: 'ready', config, saved: await services.saveConfig(config, draft) });
        const outcome = await services.startRun(config, {
          signal: controller.signal,
          onEvent: store.ingest,
          recreateTemplate: s.recreateTemplate,
        });
        store.flush();
        dispatch({ type: 'run-ended', outcome, at: now() });
      } catch (err) {
        store.ingest({ type: 'run', status: 'failed', at: now(), message: errorText(err) });
        store.flush();
        dispatch({ type: 'run-ended', outcome: { status: 'failed', message: errorText(err) }, at: now() });
      } finally {
        run.current = undefined;
      }
    })();
    run.current = { controller, done };
  };

  const onRunAction = (a: RunAction) => {
    if (a === 'quit') {
      if (run.current) {
        setStopping(true);
        run.current.controller.abort();
        void run.current.done.then(() => exit(EXIT.interrupted, resumeHint('Stopped; the state is saved.')));
      } else
        exit(
          s.outcome?.status === 'succeeded' ? EXIT.ok : s.outcome?.status === 'interrupted' ? EXIT.interrupted : EXIT.failed,
          resumeHint(s.outcome?.status === 'failed' ? 'The run failed; the state is saved.' : 'Stopped; the state is saved.'),
        );
    } else if (a === 'retry' && s.config && !run.current) startRun(s.config, s.draft);
  };

  const resumeHint = (first: string) =>
    [
      first,
      'Resume: run flatcar-k3s again and choose "Resume" on the start screen, or non-interactively:',
      `  ${s.saved?.command ?? 'flatcar-k3s up --config <file>'}`,
      ...(config ? [`Log: ${services.logFileFor(config)}`] : []),
    ].join('\n');
  return { startRun, onRunAction, stopping };
}

interface ScreenArgs {
  s: WizardState;
  dispatch: Dispatch;
  services: UiServices;
  fileError?: { path: string; message: string };
  onStart: (c: StartChoice) => Promise<void>;
  reviewConfig: Config | Error | undefined;
  plan: string[] | Error | undefined;
  store: RunStore;
  config?: Config;
  runs: RunControl;
  now: () => number;
  exit: Exit;
}

/** The screen of the wizard's current step. */
function screenFor(args: ScreenArgs): React.ReactNode {
  const { s, dispatch, services, fileError, onStart, reviewConfig, plan, store, config, runs } = args;
  const p = (draftGet(s.draft, 'proxmox') ?? {}) as ProxmoxInitial;
  const feedBaseUrl = draftGet(s.draft, 'flatcar.feedBaseUrl') as string | undefined;
  const appsDraft = (draftGet(withPreset(s.draft), 'apps') ?? {}) as Record<string, unknown>;

  // Keep an app's own settings (e.g. piraeus: { replicas: 3 }) when it stays selected.
  const appsPatch = (sel: Record<AppKey, boolean>): Plain => {
    const apps: Plain = {};
    for (const k of Object.keys(sel) as AppKey[])
      apps[k] = sel[k] ? (typeof appsDraft[k] === 'object' && appsDraft[k] !== null ? appsDraft[k] : true) : false;
    return apps;
  };

  let screen: React.ReactNode;
  switch (s.screen) {
    case 'start':
      screen = (
        <StartScreen
          unfinished={services.unfinished}
          clusters={services.clusters.filter((k) => !services.unfinished.some((u) => u.cluster === k.cluster))}
          presets={services.presets}
          fileError={fileError?.message}
          initialPath={fileError?.path}
          onSubmit={(c) => void onStart(c)}
        />
      );
      break;
    case 'proxmox':
      screen = (
        <ProxmoxScreen
          initial={p}
          sources={services.prefillSources}
          gateway={services.gateway}
          notice={s.notice}
          onSubmit={(r) => {
            if (r.back) return dispatch({ type: 'back', patch: { proxmox: r.proxmox } });
            dispatch({ type: 'facts', facts: r.facts });
            dispatch({ type: 'next', screen: 'flatcar', patch: { proxmox: r.proxmox } });
          }}
        />
      );
      break;
    case 'flatcar':
      screen = (
        <FlatcarScreen
          initial={(draftGet(s.draft, 'flatcar') ?? {}) as { channel?: string; version?: string }}
          releases={{ list: (ch) => services.releases.list(ch, feedBaseUrl) }}
          templates={s.facts?.templates ?? []}
          recreate={s.recreateTemplate}
          onSubmit={(r) => {
            dispatch({ type: 'recreate', value: r.recreateTemplate });
            dispatch(
              r.back ? { type: 'back', patch: { flatcar: r.flatcar } } : { type: 'next', screen: 'nodes', patch: { flatcar: r.flatcar } },
            );
          }}
        />
      );
      break;
    case 'nodes':
      screen = (
        <NodesScreen
          draft={s.draft}
          pveNodes={s.facts?.pveNodes ?? []}
          onSubmit={(r) => dispatch(r.back ? { type: 'back', patch: r.patch } : { type: 'next', screen: 'apps', patch: r.patch })}
        />
      );
      break;
    case 'apps':
      screen = (
        <AppsScreen
          initial={APPS.filter((a) => appsDraft[a.key] !== undefined && appsDraft[a.key] !== false).map((a) => a.key)}
          pulumiAvailable={services.pulumiAvailable}
          validate={(sel) => {
            const errors = checkDraft(mergeDraft(s.draft, { apps: appsPatch(sel) }), ['apps']).errors;
            const first = Object.entries(errors)[0];
            return first ? `${first[0]}: ${first[1]}` : undefined;
          }}
          onSubmit={(r) => {
            const apps = appsPatch(r.apps);
            dispatch(r.back ? { type: 'back', patch: { apps } } : { type: 'next', screen: 'review', patch: { apps } });
          }}
        />
      );
      break;
    case 'review':
      if (reviewConfig instanceof Error || !reviewConfig) {
        screen = (
          <ReviewError message={reviewConfig ? errorText(reviewConfig) : 'nothing to review'} onBack={() => dispatch({ type: 'back' })} />
        );
      } else {
        screen = (
          <ReviewScreen
            config={reviewConfig}
            plan={plan}
            configPath={services.configPathFor(reviewConfig)}
            secrets={services.secretsNote(reviewConfig)}
            recreateTemplate={s.recreateTemplate}
            onSubmit={(r) => (r.back ? dispatch({ type: 'back' }) : runs.startRun(reviewConfig, s.draft))}
          />
        );
      }
      break;
    case 'run':
      screen = (
        <RunScreen
          store={store}
          cluster={config?.cluster.name ?? ''}
          logFile={config ? services.logFileFor(config) : services.logFile}
          stopping={runs.stopping}
          onSubmit={runs.onRunAction}
        />
      );
      break;
    case 'done':
      screen = doneScreenFor(args);
      break;
  }
  return screen;
}

/** Done: the kubeconfig, the command to try, what was installed; Enter prints the same and quits. */
function doneScreenFor({ s, store, config, now, exit }: ScreenArgs): React.ReactNode {
  const chosen = config ? APPS.filter((a) => config.apps[a.key].enabled).map((a) => a.label) : [];
  // Apps skipped by the run (no Pulumi CLI) were not installed: say so instead of listing them.
  const skipped = store.getSnapshot().finished.filter((f) => f.group === 'apps' && f.status === 'skipped');
  const apps = skipped.length ? [] : chosen;
  const note = skipped.length && chosen.length ? `Not installed: ${chosen.join(', ')} (${skipped[0]!.reason ?? 'skipped'})` : undefined;
  return (
    <DoneScreen
      cluster={config?.cluster.name ?? ''}
      kubeconfigPath={s.outcome?.kubeconfigPath}
      server={s.outcome?.server}
      installed={apps}
      note={note}
      elapsedMs={(s.runEndedAt ?? now()) - (s.runStartedAt ?? now())}
      configPath={s.saved?.configPath}
      onSubmit={() =>
        exit(
          EXIT.ok,
          [
            `Cluster ${config?.cluster.name} is ready.`,
            ...(s.outcome?.kubeconfigPath
              ? [`Kubeconfig: ${s.outcome.kubeconfigPath}`, `Try: kubectl --kubeconfig ${s.outcome.kubeconfigPath} get nodes -o wide`]
              : []),
            ...(s.saved ? [`Re-run: ${s.saved.command}`] : []),
          ].join('\n'),
        )
      }
    />
  );
}
