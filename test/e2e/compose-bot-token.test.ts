// `deploy/secrets.sh bot-token`, the step of the compose deployment that gives the service its bot:
// against a real Synapse it registers @wiki-matrix-sso as a server admin through the shared-secret
// registration API (the secret compose mounts into Synapse) and keeps the access token in the
// matrix_bot_token secret; run again, it keeps the token it has.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { skipUnless } from '../support/real-parts.ts';
import { clientApi, startSynapse, synapseAvailable, type Synapse } from '../support/synapse.ts';

const exec = promisify(execFile);
const script = new URL('../../deploy/secrets.sh', import.meta.url).pathname;
const unavailable = synapseAvailable();

describe('secrets.sh bot-token', { skip: skipUnless(unavailable), timeout: 120_000 }, () => {
  let synapse: Synapse;
  let dir: string;
  before(async () => {
    if (unavailable) throw new Error(unavailable);
    synapse = await startSynapse();
    dir = mkdtempSync(join(tmpdir(), 'wms-bot-token-'));
    writeFileSync(join(dir, 'synapse_registration_secret'), `${synapse.registrationSecret}\n`);
    writeFileSync(join(dir, 'matrix_bot_token'), '');
  });
  after(async () => {
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('registers the bot as a Synapse admin and keeps its token; a re-run keeps it', async () => {
    const env = { ...process.env, SECRETS_DIR: dir };
    const first = await exec('bash', [script, 'bot-token', synapse.baseUrl], { env });
    assert.match(first.stderr, /registered @wiki-matrix-sso \(a Synapse admin\)/);
    const token = readFileSync(join(dir, 'matrix_bot_token'), 'utf8').trim();
    const api = clientApi(synapse);
    const { user_id: userId } = await api.call(token, 'GET', '/account/whoami');
    assert.equal(userId, `@wiki-matrix-sso:${synapse.serverName}`);
    const user = await api.admin('GET', `/_synapse/admin/v2/users/${encodeURIComponent(userId)}`);
    assert.equal(user.admin, true);

    const again = await exec('bash', [script, 'bot-token', synapse.baseUrl], { env });
    assert.match(again.stderr, /already holds a token/);
    assert.equal(readFileSync(join(dir, 'matrix_bot_token'), 'utf8').trim(), token);
  });
});
