// Runs the real executable as a child process, the way an operator would.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcessWithoutNullStreams;
  output(): string;
  /**
   * Resolves when the output (stdout + stderr) matches, rejects after timeoutMs or on exit. With
   * `after` (a `mark()`), only stdout written since then is looked at.
   */
  waitFor(pattern: RegExp, timeoutMs?: number, after?: number): Promise<string>;
  /** Where stdout ends now, for `waitFor(…, after)`. */
  mark(): number;
  exited: Promise<Finished>;
}

export function start(args: string[], env: Record<string, string | undefined> = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, WMS_CONFIG: undefined, DATABASE_URL: undefined, ...env } });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (d) => ((stdout += d), listeners.forEach((l) => l())));
  child.stderr.on('data', (d) => ((stderr += d), listeners.forEach((l) => l())));
  const exited = new Promise<Finished>((resolve) => child.on('close', (code) => (listeners.forEach((l) => l()), resolve({ code, stdout, stderr }))));
  return {
    child,
    exited,
    output: () => stdout + stderr,
    mark: () => stdout.length,
    waitFor(pattern, timeoutMs = 20_000, after) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; output so far:\n${stdout}${stderr}`)), timeoutMs);
        const check = () => {
          const m = pattern.exec(after === undefined ? stdout + stderr : stdout.slice(after));
          if (m) done(undefined, m[0]);
          else if (child.exitCode !== null) done(new Error(`exited with ${child.exitCode} before ${pattern}:\n${stdout}${stderr}`));
        };
        const done = (error?: Error, match?: string) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve(match!);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

export function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Finished> {
  return start(args, env).exited;
}

const KEY = 'k'.repeat(40);

/** Writes a configuration file (a valid minimal one plus `extra` YAML and `matrix` settings) and returns its path. */
export function writeConfig(extra = '', matrix: Record<string, string> = {}): string {
  const path = join(mkdtempSync(join(tmpdir(), 'wms-cli-')), 'config.yaml');
  const matrixLines = Object.entries({ server_name: 'localhost', ...matrix }).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}\n`);
  writeFileSync(path, `oidc:\n  cookie_keys: [${KEY}]\n  key_encryption_secret: test-secret\nmatrix:\n${matrixLines.join('')}logging:\n  level: info\n${extra}`);
  return path;
}
