/** Naming rules of Flatcar templates, shared by the template steps and the Flatcar screen. */

/** VM names must be DNS names: "flatcar-stable-4593-2-5". */
export function templateName(channel: string, version: string): string {
  return `flatcar-${channel}-${version.replaceAll('.', '-')}`;
}
