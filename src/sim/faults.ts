/**
 * Fault injection: fail the Nth matching request, fail the Nth task of a type, drop a connection.
 * Paths are globs over the path below /api2/json, `*` matching one segment ("/nodes/*\/qemu/*\/clone").
 * Without `nth` a fault applies to every match. Spec strings (CLI, POST /_sim/faults):
 *   "POST /nodes/*\/qemu/*\/clone#2=500:message"   request fault (nth 2, status 500)
 *   "task:qmclone#1=message"                        task fault
 *   "drop:POST /nodes/*\/qemu#1"                    drop the connection
 *   "slow:pve2=5"                                   everything on pve2 takes 5 times longer (applyFaultSpec)
 */
export interface RequestFault {
  method: string;
  path: string;
  nth?: number;
  status?: number;
  message?: string;
}
export interface TaskFault {
  type: string;
  nth?: number;
  message: string;
}
export interface DropFault {
  method: string;
  path: string;
  nth?: number;
}

interface Counted<T> {
  spec: T;
  re: RegExp;
  seen: number;
}

const globRe = (glob: string): RegExp =>
  new RegExp(
    '^' +
      glob
        .replace(/\/+$/, '')
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*') +
      '/?$',
  );

export class Faults {
  private requests: Array<Counted<RequestFault>> = [];
  private tasks: Array<Counted<TaskFault>> = [];
  private drops: Array<Counted<DropFault>> = [];

  failRequest(spec: RequestFault): void {
    this.requests.push({ spec: { ...spec, method: spec.method.toUpperCase() }, re: globRe(spec.path), seen: 0 });
  }
  failTask(spec: TaskFault): void {
    this.tasks.push({ spec, re: /^$/, seen: 0 });
  }
  dropConnection(spec: DropFault): void {
    this.drops.push({ spec: { ...spec, method: spec.method.toUpperCase() }, re: globRe(spec.path), seen: 0 });
  }
  clear(): void {
    this.requests = [];
    this.tasks = [];
    this.drops = [];
  }

  private hit<T extends { nth?: number }>(list: Array<Counted<T>>, match: (c: Counted<T>) => boolean): T | undefined {
    let found: T | undefined;
    for (const c of list) {
      if (!match(c)) continue;
      c.seen++;
      if (!found && (c.spec.nth === undefined || c.spec.nth === c.seen)) found = c.spec;
    }
    return found;
  }

  /** The request fault that applies to this call, counting it. */
  onRequest(method: string, path: string): RequestFault | undefined {
    return this.hit(this.requests, (c) => c.spec.method === method && c.re.test(path));
  }
  onDrop(method: string, path: string): DropFault | undefined {
    return this.hit(this.drops, (c) => c.spec.method === method && c.re.test(path));
  }
  onTask(type: string): TaskFault | undefined {
    return this.hit(this.tasks, (c) => c.spec.type === type);
  }

  /** Parse one spec string (see the module comment) and register it. */
  addSpec(text: string): void {
    const task = /^task:([A-Za-z0-9_-]+)(?:#(\d+))?=(.+)$/s.exec(text);
    if (task) return this.failTask({ type: task[1]!, nth: task[2] ? Number(task[2]) : undefined, message: task[3]! });
    const drop = /^drop:([A-Za-z]+)\s+(\S+?)(?:#(\d+))?$/.exec(text);
    if (drop) return this.dropConnection({ method: drop[1]!, path: drop[2]!, nth: drop[3] ? Number(drop[3]) : undefined });
    const req = /^([A-Za-z]+)\s+(\S+?)(?:#(\d+))?(?:=(\d{3})(?::(.*))?)?$/s.exec(text);
    if (req) {
      return this.failRequest({
        method: req[1]!,
        path: req[2]!,
        nth: req[3] ? Number(req[3]) : undefined,
        status: req[4] ? Number(req[4]) : 500,
        message: req[5],
      });
    }
    throw new Error(
      `fault spec '${text}' is not understood: use 'METHOD /path/glob[#N]=STATUS:message', 'task:TYPE[#N]=message', 'drop:METHOD /path/glob[#N]' or 'slow:NODE=FACTOR'`,
    );
  }
}

/** Register any spec string, including "slow:NODE=FACTOR" which goes to the latency model. */
export function applyFaultSpec(spec: string, faults: Faults, slowNode: (node: string, factor: number) => void): void {
  const slow = /^slow:([a-zA-Z0-9-]+)=(\d+(?:\.\d+)?)$/.exec(spec);
  if (slow) return slowNode(slow[1]!, Number(slow[2]));
  faults.addSpec(spec);
}
