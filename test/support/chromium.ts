// Real headless Chromium (Debian's `chromium` package) driven by playwright-core, for tests that
// look at pages as a browser does: CSP enforcement, applied styles, focus, screenshots.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.WMS_CHROMIUM_PATH || '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

/** Why Chromium cannot be used on this machine, or undefined when it can. */
export function chromiumAvailable(): string | undefined {
  const hint = 'apt-get install chromium (or set WMS_CHROMIUM_PATH)';
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    return `no Chromium at ${CHROMIUM_PATH}: ${hint}`;
  }
  const version = spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8', timeout: 15_000 });
  if (version.error || version.status !== 0) return `${CHROMIUM_PATH} --version failed: ${hint}`;
  return undefined;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, timeout: 30_000 });
}
