/** Shapes of the official PVE API schema (vendor/pve/apidata.json), as far as the simulator reads them. */
export interface PropSchema {
  type?: string;
  optional?: number | boolean;
  default?: unknown;
  enum?: string[] | null;
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string | Record<string, PropSchema>;
  default_key?: number | boolean;
  alias?: string;
  keyAlias?: string;
  requires?: string | Record<string, unknown>;
  items?: PropSchema;
  description?: string;
  [k: string]: unknown;
}

/** A permission check expression as in apidata ("check": ["perm", "/vms/{vmid}", ["VM.Audit"]] …). */
export type PermCheck = unknown[];

export interface MethodInfo {
  name?: string;
  method: string;
  description?: string;
  parameters?: { type?: string; properties?: Record<string, PropSchema>; additionalProperties?: number | boolean };
  returns?: unknown;
  permissions?: { check?: PermCheck; user?: string; description?: string };
  protected?: number;
  allowtoken?: number;
  proxyto?: string;
}

export interface SchemaNode {
  path: string;
  text: string;
  leaf?: number;
  children?: SchemaNode[];
  info?: Record<string, MethodInfo>;
}

/** One error map as Proxmox returns it: parameter path → message. */
export type ParamErrors = Record<string, string>;
