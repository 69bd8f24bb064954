// A sanction that ends sessions (`moderation.sessions`), end to end: the real worker, a real
// MediaWiki and a real Synapse. A sitewide block (configured to end sessions) logs the person's
// Matrix devices out within a pass, once, with an audit record and a notice; the unblock lifts the
// record, and a sanction not configured to end sessions leaves them signed in.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import type { TestDatabase } from '../support/backends.ts';
import type { Running } from '../support/cli.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { synapseAvailable } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();

jest.setTimeout(180_000);

skippable(describe, skipUnless(unavailable))('a sanction ends the person\'s Matrix sessions', () => {
  let stack: MirrorStack;
  let worker: Running;
  let db: TestDatabase | undefined;

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    stack = await startMirrorStack({
      names: ['Signed In Vandal', 'Partly Blocked'],
      rooms: 2,
      ownPostgres: true,
      config: { moderation: { sessions: { sitewide_block: true } } },
    });
    db = stack.db;
    worker = stack.startWorker();
    await worker.waitFor(/moderation pass done/, 30_000);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const whoami = (token: string) =>
    fetch(`${stack.synapse.baseUrl}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({ status: r.status, json: (await r.json()) as { errcode?: string } }));

  test('a sitewide block logs every device out within a pass, once, audited and announced', async () => {
    const vandal = stack.users.get('Signed In Vandal')!;
    assert.equal((await whoami(vandal.accessToken)).status, 200);
    const { id } = await stack.wiki.block('Signed In Vandal', { reason: 'vandalism' });
    const refused = await eventually('the access token refused', async () => {
      const answer = await whoami(vandal.accessToken);
      return answer.status === 401 ? answer : undefined;
    });
    assert.equal(refused.json.errcode, 'M_UNKNOWN_TOKEN');
    await stack.eventuallyAll('Signed In Vandal', 'ban');
    const notices = await eventually('the notice', async () => ((await stack.noticeTexts()).some((t) => t.includes('Ended the sessions')) ? stack.noticeTexts() : undefined));
    assert.ok(notices.some((t) => t.includes(`Ended the sessions of ${vandal.userId}`) && t.includes(`block #${id}`)), notices.join('\n---\n'));
    await sleep(2_000); // more polls: nothing more is done
    if (db) {
      const ended = (await new ModerationAuditLog(db).list({ userId: vandal.userId, kind: 'end_sessions' })).entries;
      assert.deepEqual(ended.map((e) => e.outcome), ['applied'], 'once');
      assert.equal((await new ModerationRecordStore(db).load({ userIds: [vandal.userId] })).sessionEnds.length, 1);
    }
  });

  test('a partial block is no sanction that ends sessions; the unblock lifts the record', async () => {
    const partly = stack.users.get('Partly Blocked')!;
    await stack.wiki.block('Partly Blocked', { reason: 'edit war', partial: true, pages: ['Main Page'] });
    await sleep(3_000); // a few polls
    assert.equal((await whoami(partly.accessToken)).status, 200, 'still signed in');

    await stack.wiki.unblock('Signed In Vandal');
    await stack.eventuallyAll('Signed In Vandal', 'leave');
    if (db) {
      const userId = stack.users.get('Signed In Vandal')!.userId;
      await eventually('the record lifted', async () => ((await new ModerationRecordStore(db!).load({ userIds: [userId] })).sessionEnds.length === 0 ? true : undefined));
    }
  });
});
