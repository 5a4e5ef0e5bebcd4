/**
 * The official PVE API schema, loaded once and compiled into a path trie → method → validator.
 * Indexed parameters that apidata collapses ("scsi[n]", "net[n]") are expanded to their real names
 * (scsi0…scsi30) with the range from the description, or qemu-server's limits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vendorDir } from '../../paths.js';
import type { MethodInfo, ParamErrors, PropSchema, SchemaNode } from './types.js';
import { addError, compileProp, type CheckFn } from './validate.js';

export type { MethodInfo, ParamErrors, PropSchema } from './types.js';

/** Highest index of collapsed parameters whose description does not say (qemu-server/pve-container limits). */
const INDEX_MAX: Record<string, number> = {
  net: 31,
  ipconfig: 31,
  hostpci: 15,
  numa: 7,
  unused: 255,
  virtiofs: 9,
  link: 7,
  dev: 255,
  mp: 255,
  acmedomain: 4,
  scsi: 30,
  ide: 3,
  sata: 5,
  virtio: 15,
  serial: 3,
  parallel: 2,
  usb: 14,
};

export interface CompiledMethod {
  method: string;
  /** Schema path with placeholders, e.g. "/nodes/{node}/qemu/{vmid}/config". */
  path: string;
  info: MethodInfo;
  /** Validate request parameters (path parameters included); returns Proxmox's error map. */
  validate(params: Record<string, unknown>): ParamErrors;
  /** The property schema for a real parameter name (scsi0 → "scsi[n]"), if any. */
  prop(name: string): PropSchema | undefined;
}

interface TrieNode {
  literal: Map<string, TrieNode>;
  param?: { name: string; node: TrieNode };
  methods?: Map<string, CompiledMethod>;
  path?: string;
}

function compileMethod(path: string, info: MethodInfo): CompiledMethod {
  const props = info.parameters?.properties ?? {};
  const additional = info.parameters?.additionalProperties;
  const fixed = new Map<string, { schema: PropSchema; check: CheckFn }>();
  const indexed: Array<{ prefix: string; max: number; schema: PropSchema; check: CheckFn }> = [];
  for (const [name, schema] of Object.entries(props)) {
    const m = /^([a-z]+)\[n\]$/.exec(name);
    if (m) {
      const range = /\(n is 0 to (\d+)/.exec(schema.description ?? '');
      indexed.push({ prefix: m[1]!, max: range ? Number(range[1]) : (INDEX_MAX[m[1]!] ?? 255), schema, check: compileProp(schema) });
    } else {
      fixed.set(name, { schema, check: compileProp(schema) });
    }
  }
  const requires = [...fixed].filter(([, p]) => typeof p.schema.requires === 'string');
  const lookup = (name: string): { schema: PropSchema; check: CheckFn } | undefined => {
    const f = fixed.get(name);
    if (f) return f;
    const m = /^([a-z]+)(0|[1-9]\d*)$/.exec(name);
    if (!m) return undefined;
    const ix = indexed.find((i) => i.prefix === m[1]);
    return ix && Number(m[2]) <= ix.max ? ix : undefined;
  };
  return {
    method: info.method,
    path,
    info,
    prop: (name) => lookup(name)?.schema,
    validate(params) {
      const errors: ParamErrors = {};
      for (const [name, p] of fixed) p.check(params[name], name, errors);
      for (const [name, p] of requires) {
        const req = p.schema.requires as string;
        if (params[name] !== undefined && params[req] === undefined)
          addError(errors, req, `missing property - '${name}' requires this property`);
      }
      for (const name of Object.keys(params)) {
        if (fixed.has(name)) continue;
        const p = lookup(name);
        if (p) p.check(params[name], name, errors);
        else if (additional !== undefined && !additional) {
          addError(errors, name, 'property is not defined in schema and the schema does not allow additional properties');
        } else if (additional) {
          // additionalProperties: 1 (a handful of methods): anything goes
        }
      }
      return errors;
    },
  };
}

export interface RouteMatch {
  route: CompiledMethod;
  pathParams: Record<string, string>;
}

export class ApiSchema {
  readonly root: TrieNode = { literal: new Map() };
  /** Every (METHOD, path) pair in the schema. */
  readonly methods: CompiledMethod[] = [];
  private readonly byKey = new Map<string, CompiledMethod>();

  constructor(tree: SchemaNode[]) {
    const walk = (nodes: SchemaNode[]): void => {
      for (const n of nodes) {
        if (n.info) this.add(n.path, n.info);
        if (n.children) walk(n.children);
      }
    };
    walk(tree);
  }

  private add(path: string, info: Record<string, MethodInfo>): void {
    let node = this.root;
    for (const seg of path.split('/').filter(Boolean)) {
      const p = /^\{(.+)\}$/.exec(seg);
      if (p) {
        node.param ??= { name: p[1]!, node: { literal: new Map() } };
        node = node.param.node;
      } else {
        let next = node.literal.get(seg);
        if (!next) node.literal.set(seg, (next = { literal: new Map() }));
        node = next;
      }
    }
    node.path = path;
    node.methods ??= new Map();
    for (const [m, i] of Object.entries(info)) {
      const compiled = compileMethod(path, i);
      node.methods.set(m, compiled);
      this.methods.push(compiled);
      this.byKey.set(`${m} ${path}`, compiled);
    }
  }

  /** Find the schema entry for a request path (below /api2/json). `exists` is false when no path matched at all. */
  match(method: string, path: string): { exists: boolean; match?: RouteMatch } {
    const segs = path.split('/').filter(Boolean);
    const pathParams: Record<string, string> = {};
    const find = (node: TrieNode, i: number): TrieNode | undefined => {
      if (i === segs.length) return node.methods ? node : undefined;
      const seg = decodeURIComponent(segs[i]!);
      const lit = node.literal.get(seg);
      if (lit) {
        const r = find(lit, i + 1);
        if (r) return r;
      }
      if (node.param) {
        const r = find(node.param.node, i + 1);
        if (r) {
          pathParams[node.param.name] = seg;
          return r;
        }
      }
      return undefined;
    };
    const node = find(this.root, 0);
    if (!node) return { exists: false };
    const route = node.methods!.get(method);
    return { exists: true, match: route ? { route, pathParams } : undefined };
  }

  /** The compiled method for a schema path like "/nodes/{node}/qemu". */
  get(method: string, schemaPath: string): CompiledMethod | undefined {
    return this.byKey.get(`${method} ${schemaPath}`);
  }
}

let cached: ApiSchema | undefined;
export const defaultSchemaFile = (): string => join(vendorDir(), 'pve', 'apidata.json');

/** Load and compile the vendored schema once per process. */
export function loadApiSchema(file = defaultSchemaFile()): ApiSchema {
  if (file === defaultSchemaFile() && cached) return cached;
  const schema = new ApiSchema(JSON.parse(readFileSync(file, 'utf8')) as SchemaNode[]);
  if (file === defaultSchemaFile()) cached = schema;
  return schema;
}
