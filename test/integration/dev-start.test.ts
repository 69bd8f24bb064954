// `npm start` (the `dev` command) on a fresh clone: it says what it is doing while it creates the
// embedded database, and a second start opens it again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '@jest/globals';
import YAML from 'yaml';
import { CLI, run } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';

/** Runs `dev` in `dir` until it says it is ready, then stops it; what it printed. */
function devUntilReady(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'dev', '--config', join(dir, 'wiki-matrix-sso.yaml')], {
      cwd: dir,
      // From nothing (initdb and every migration), as without the template `npm install` makes.
      env: { ...process.env, WMS_CONFIG: undefined, DATABASE_URL: undefined, WMS_PGLITE_TEMPLATE_DIR: 'none' },
    });
    let stdout = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (/Press Ctrl-C to stop/.test(stdout)) child.kill('SIGTERM');
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (/Press Ctrl-C to stop/.test(stdout)) resolve(stdout);
      else reject(new Error(`dev exited with ${code} before it was ready:\n${stdout}`));
    });
  });
}

test('a first start says it is creating the embedded database and applying the migrations; the next one opens it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wms-dev-'));
  // The configuration `dev` would write, on a free port instead of 8080.
  const path = join(dir, 'wiki-matrix-sso.yaml');
  assert.equal((await run(['config', 'generate', '--output', path])).code, 0);
  const config = YAML.parseDocument(readFileSync(path, 'utf8'));
  const port = await freePort();
  config.setIn(['http', 'port'], port);
  config.setIn(['http', 'public_url'], `http://127.0.0.1:${port}`);
  writeFileSync(path, config.toString(), { mode: 0o600 });
  const first = await devUntilReady(dir);
  assert.match(first, /\[\d+\.\d s\] creating the embedded database in \.\/data\/pglite \(first start only\)…/);
  assert.match(first, /\[\d+\.\d s\] applying \d+ database migrations…/);
  assert.match(first, /\[\d+\.\d s\] created the signing keys…/);
  assert.match(first, /running on the embedded database \(\.\/data\/pglite\), ready in \d+\.\d s\./);
  const second = await devUntilReady(dir);
  assert.match(second, /\[\d+\.\d s\] opening the embedded database in \.\/data\/pglite…/);
  assert.doesNotMatch(second, /creating the embedded database|applying|created the signing keys/);
  assert.match(second, /\[\d+\.\d s\] loading the signing keys…/);
});
