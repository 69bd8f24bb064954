// `sync`: one full pass from the command line, on the embedded database, with a static wiki and an
// in-memory homeserver: the dry run prints the plan and changes nothing (not even the audit); the
// real run applies it and prints the outcome.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, test } from '@jest/globals';
import pino from 'pino';
import { runSync } from '../../src/commands/sync.ts';
import type { WorkerDeps } from '../../src/commands/worker.ts';
import { parseConfig } from '../../src/config/load.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import type { WikiState } from '../../src/moderation/types.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const KEY = 'a'.repeat(32);
const ROOM = '!a:example.org';
const silent = pino({ level: 'silent' });

const state: WikiState = {
  wiki: 'wiki.example',
  complete: true,
  users: [{
    account: { wiki: 'wiki.example', centralId: '9', username: 'Vandal', localpart: 'vandal' },
    blocks: [{ id: 5, user: 'Vandal', userId: 9, by: 'Admin', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: null, reason: 'Spam', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] }, anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: false }],
    globalBlocks: [], lock: null, groups: [], globalGroups: [],
  }],
};

describe('sync command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wms-sync-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(
    `matrix:\n  server_name: example.org\noidc:\n  cookie_keys: [${KEY}]\n  key_encryption_secret: s3cret\ndatabase:\n  data_dir: ${dir}/data\nsync:\n  dry_run: false\nmoderation:\n  rooms:\n    - room_id: "${ROOM}"\n`,
    'test.yaml',
  );
  const matrix = new FakeMatrix('@bot:example.org');
  matrix.addRoom(ROOM, { members: ['@vandal:example.org'] });
  const deps: WorkerDeps = {
    gateway: () => matrix,
    sources: () => ({ source: { fullPass: async () => state, targeted: async () => ({ ...state, complete: false }) } }),
  };
  async function sync(dryRun: boolean): Promise<{ code: number; text: string }> {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => (text += chunk));
    const code = await runSync({ config, log: silent, dryRun, deps, out });
    return { code, text };
  }
  async function auditCount(): Promise<number> {
    const db = await openPglite(config.database.data_dir);
    try {
      return (await new ModerationAuditLog(db).list()).entries.length;
    } finally {
      await db.close();
    }
  }

  test('--dry-run prints the plan and changes nothing', async () => {
    const { code, text } = await sync(true);
    assert.equal(code, 0);
    assert.match(text, /^Dry run: 1 mapped account read; 1 change would be made\. Nothing was changed\.$/m);
    assert.match(text, /^ban +@vandal:example\.org in !a:example\.org: Blocked on wiki\.example \(block #5 by Admin, indefinitely\): Spam$/m);
    assert.equal(matrix.calls.length, 0);
    assert.equal(await auditCount(), 0);
  }, 60_000);

  test('a real pass applies and prints the outcome', async () => {
    const { code, text } = await sync(false);
    assert.equal(code, 0);
    assert.match(text, /^Pass [0-9a-f-]+: 1 mapped account read; applied 1\.$/m);
    assert.match(text, /^applied +ban +@vandal:example\.org/m);
    assert.equal(matrix.writes('ban').length, 1);
    assert.equal(await auditCount(), 1);
    const again = await sync(false);
    assert.match(again.text, /nothing to do/);
  }, 60_000);
});
