/** Naming rules of Flatcar templates, shared by the template steps and the Flatcar screen. */

/** VM names must be DNS names: "flatcar-stable-4593-2-5". */
export function templateName(channel: string, version: string): string {
  return `flatcar-${channel}-${version.replaceAll('.', '-')}`;
}

/**
 * The template a PVE host builds for itself when disks are on local storage (one per host that runs
 * VMs): the release name with the host in it, "flatcar-stable-4593-2-5-pve2" (a DNS name, ≤ 63).
 */
export function hostTemplateName(channel: string, version: string, host: string): string {
  return `${templateName(channel, version)}-${host.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63).replace(/-+$/, '');
}
