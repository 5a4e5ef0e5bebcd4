/** The part of the Ignition 3.3.0 config spec this tool writes (vendor/ignition/ignition-v3_3.schema.json). */

export const IGNITION_VERSION = '3.3.0';

export interface IgnitionFile {
  path: string;
  /** Replace a file the image already has (Ignition fails on an existing file otherwise). */
  overwrite?: boolean;
  mode?: number;
  contents?: { source: string; compression?: string };
}

export interface IgnitionDirectory {
  path: string;
  overwrite?: boolean;
  mode?: number;
}

export interface IgnitionUnit {
  name: string;
  enabled?: boolean;
  mask?: boolean;
  contents?: string;
  dropins?: Array<{ name: string; contents?: string }>;
}

export interface IgnitionUser {
  name: string;
  sshAuthorizedKeys?: string[];
  groups?: string[];
}

export interface IgnitionConfig {
  ignition: { version: typeof IGNITION_VERSION };
  storage?: { files?: IgnitionFile[]; directories?: IgnitionDirectory[] };
  systemd?: { units?: IgnitionUnit[] };
  /** Spec 3.3.0: Flatcar edits its GRUB config and reboots once when these differ from the kernel command line. */
  kernelArguments?: { shouldExist?: string[]; shouldNotExist?: string[] };
  passwd?: { users?: IgnitionUser[] };
}
