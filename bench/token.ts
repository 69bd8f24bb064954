// `npm run bench:token`: the token endpoint alone, code exchanges per second, measured (not
// asserted). A few real sign-ins through the whole flow (as bench:login does them) give real
// authorization codes, their grants and sessions; the service is stopped, and those codes are
// copied in the database under fresh ids, each with a PKCE challenge of a verifier this run knows
// and an hour to live (a real code lives 60 s, too short to stock a run). Then N clients exchange
// them with client_secret_basic and verify each ID token, as homeservers do. Options as bench:login.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Http } from './login/http.ts';
import { authorizationRequest, browse, discover, exchangeOnly } from './login/flow.ts';
import { describeLoad, describeProfiles, loadSummary, runLoad, type LoadResult } from './login/load.ts';
import { parseOptions, runBenchmark } from './login/options.ts';
import { startBenchStack } from './login/stack.ts';
import { eachBounded } from './sync/common.ts';

const options = parseOptions(process.argv.slice(2));
const budgetMs = options.concurrency.length * (options.warmupS + options.durationS + 30) * 1000 + 300_000;
/** Codes stocked: more than the fastest endpoint could take in the time given. */
const CODES_PER_SECOND = 3000;
const MAX_CODES = 500_000;
const TEMPLATES = 32;

runBenchmark(budgetMs, async ({ cleanups, say }) => {
  say(`token benchmark: ${options.databaseUrl ? 'PostgreSQL' : 'PGlite'}, ${options.accounts.toLocaleString('en')} accounts stored`);
  const stack = await startBenchStack({ ...options, cleanups, say });
  const http = new Http();
  cleanups.add(async () => http.close());
  const provider = await discover(http, stack.issuer, options.timeoutS * 1000);

  const nonces = new Map<string, string>();
  await eachBounded(Array.from({ length: TEMPLATES }, (_, i) => i), 8, async () => {
    const request = authorizationRequest(provider);
    const { code } = await browse(provider, request, []);
    nonces.set(code, request.nonce);
  });

  const total = Math.min(MAX_CODES, CODES_PER_SECOND * options.concurrency.length * (options.warmupS + options.durationS));
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  await stack.stopService();
  const started = performance.now();
  const codes = await stack.withDatabase(async (db) => {
    const { rows } = await db.query<{ id: string; payload: Record<string, unknown>; grant_id: string | null; uid: string | null }>(
      "SELECT id, payload, grant_id, uid FROM oidc_payloads WHERE model = 'AuthorizationCode' AND consumed_at IS NULL",
    );
    if (rows.length === 0) throw new Error('the sign-ins left no authorization code to copy');
    const now = Math.floor(Date.now() / 1000);
    const stocked: Array<{ code: string; nonce: string | undefined }> = [];
    const BATCH = 5000;
    for (let from = 0; from < total; from += BATCH) {
      const ids: string[] = [];
      const payloads: string[] = [];
      const grants: Array<string | null> = [];
      for (let i = from; i < Math.min(from + BATCH, total); i++) {
        const template = rows[i % rows.length]!;
        const id = randomBytes(32).toString('base64url');
        ids.push(id);
        payloads.push(JSON.stringify({ ...template.payload, jti: id, iat: now, exp: now + 3600, codeChallenge: challenge, codeChallengeMethod: 'S256' }));
        grants.push(template.grant_id);
        stocked.push({ code: id, nonce: nonces.get(template.id) ?? (template.payload.nonce as string | undefined) });
      }
      await db.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, expires_at)
         SELECT 'AuthorizationCode', id, payload::jsonb, grant_id, now() + interval '1 hour' FROM unnest($1::text[], $2::text[], $3::text[]) AS t(id, payload, grant_id)`,
        [ids, payloads, grants],
      );
    }
    await db.query('ANALYZE oidc_payloads');
    return stocked;
  });
  say(`stocked ${codes.length.toLocaleString('en')} codes (copies of ${TEMPLATES} real ones) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await stack.startService();

  let next = 0;
  const work = () => {
    const stocked = codes[next++];
    return stocked && exchangeOnly(provider, stocked.code, verifier, stocked.nonce);
  };
  const results = [];
  const raw: LoadResult[] = [];
  const text: string[] = [];
  for (const concurrency of options.concurrency) {
    say(`concurrency ${concurrency}: warm-up ${options.warmupS} s, then ${options.durationS} s measured`);
    const result = await runLoad({ concurrency, warmupMs: options.warmupS * 1000, durationMs: options.durationS * 1000, work, stack, say });
    text.push(describeLoad(result, 'exchange'));
    say(`concurrency ${concurrency}: ${(result.ok / result.wallSeconds).toFixed(1)} exchanges/s`);
    results.push(loadSummary(result));
    raw.push(result);
  }
  const heading = [
    `Token endpoint benchmark (code exchange, ID token verified): ${stack.backend}, ${options.workers} serve process${options.workers > 1 ? 'es' : ''} (pool_max ${options.poolMax}${options.nodeFlags.length > 0 ? `, node ${options.nodeFlags.join(' ')}` : ''}), ${options.accounts.toLocaleString('en')} accounts stored, warm-up ${options.warmupS} s`,
    `Node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end${options.serviceRoot ? `, service from ${options.serviceRoot}` : ''}`,
  ].join('\n');
  if (stack.warnings.length) text.push(`The service logged ${stack.warnings.length} warnings or errors; the first ones:\n${stack.warnings.slice(0, 10).map((l) => `  ${l.slice(0, 400)}`).join('\n')}`);
  if (options.cpuProfileDir) text.push(await describeProfiles(stack, options.cpuProfileDir, raw, 'exchange'));
  process.stdout.write(`\n${heading}\n\n${text.join('\n\n')}\n`);
  if (options.json) writeFileSync(options.json, `${JSON.stringify({ benchmark: 'token', backend: stack.backend.split(' ')[0], accounts: options.accounts, workers: options.workers, durationS: options.durationS, loadAverage: loadavg(), results }, null, 2)}\n`);
  return results.some((r) => Object.keys(r.errors).length > 0 || r.ok === 0) ? 1 : 0;
});
