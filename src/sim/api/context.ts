/** What every endpoint handler gets: the simulator's parts and the request. */
import type { AuthInfo, AuthService } from '../auth.js';
import type { Faults } from '../faults.js';
import type { LatencyModel } from '../latency.js';
import type { LockTable } from '../locks.js';
import type { ApiSchema } from '../schema/index.js';
import type { SimState } from '../state.js';
import type { TaskRegistry } from '../tasks.js';
import type { GuestHooks } from '../types.js';

export interface SimContext {
  state: SimState;
  tasks: TaskRegistry;
  locks: LockTable;
  latency: LatencyModel;
  faults: Faults;
  auth: AuthService;
  schema: ApiSchema;
  guest: GuestHooks;
  /** Background work (boots) the simulator awaits on close. */
  track(p: Promise<unknown>): void;
}

export interface ApiRequest {
  method: string;
  /** path below /api2/json */
  path: string;
  params: Record<string, string | string[] | undefined>;
  auth: AuthInfo | undefined;
}

export type Handler = (ctx: SimContext, req: ApiRequest) => unknown;
export type HandlerTable = Record<string, Handler>;

/** A string parameter (single value). */
export const str = (req: ApiRequest, name: string): string | undefined => {
  const v = req.params[name];
  return Array.isArray(v) ? v[0] : v;
};
export const int = (req: ApiRequest, name: string): number | undefined => {
  const v = str(req, name);
  return v === undefined ? undefined : Number(v);
};
export const bool = (req: ApiRequest, name: string): boolean | undefined => {
  const v = str(req, name);
  return v === undefined ? undefined : v === '1' || v === 'true';
};
