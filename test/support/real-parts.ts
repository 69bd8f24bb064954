/**
 * Whether a suite that needs a real part (MediaWiki, Synapse, Chromium) is skipped. On a developer
 * machine without the part it is skipped with the reason; under CI (CI=true) it never is, so a
 * missing install step fails loudly instead of passing quietly.
 */
export function skipUnless(unavailable: string | undefined): string | false {
  if (!unavailable || process.env.CI) return false;
  return unavailable;
}
