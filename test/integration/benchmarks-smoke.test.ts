// The login and token benchmarks still run end to end, for a few seconds each. A smoke test: it
// checks that they work and print their figures, never how fast anything is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from '@jest/globals';

const ROOT = new URL('../../', import.meta.url).pathname;

function bench(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${ROOT}${script}`, ...args], { env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), 150_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const SHORT = ['--concurrency', '2', '--duration', '2', '--warmup', '1', '--accounts', '50', '--users', '60'];

test('bench:login signs browsers in through the whole flow and prints its figures', async () => {
  const { code, stdout, stderr } = await bench('bench/login.ts', [...SHORT, '--trace-sql']);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /concurrency 2: [\d,]+ logins in [\d.]+ s = [\d.]+ logins\/s, 0 errors/);
  for (const figure of [/whole login +p50/, /POST \/token +p50/, /browser requests per login: 7\.0/, /ms CPU per login/, /peak RSS \d+ MiB/, /statements per login/]) assert.match(stdout, figure);
  if (process.env.TEST_DATABASE_URL) assert.match(stdout, /PostgreSQL per login: [\d.]+ transactions, [\d.]+ tuples returned/);
});

test('bench:token exchanges codes at the token endpoint and prints its figures', async () => {
  const { code, stdout, stderr } = await bench('bench/token.ts', SHORT);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /concurrency 2: [\d,]+ exchanges in [\d.]+ s = [\d.]+ exchanges\/s, 0 errors/);
});
