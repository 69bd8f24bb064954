// Members-only rooms for wiki groups (`moderation.gated_rooms`), end to end: the real worker, a
// real MediaWiki and a real Synapse. Joining the group on the wiki gets the person invited within
// a pass; leaving it removes them; someone invited by hand is left alone throughout.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, jest, test } from '@jest/globals';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import type { Running } from '../support/cli.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { clientApi, synapseAvailable } from '../support/synapse.ts';
import { skippable } from '../support/suites.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();
const enc = encodeURIComponent;

const CANDIDATE = 'Νέος Διαχειριστής';
const BY_HAND = 'هاند إنفايتد';

jest.setTimeout(180_000);

skippable(describe, skipUnless(unavailable))('a gated room follows a wiki group', () => {
  let stack: MirrorStack;
  let worker: Running;
  let gated: string;
  const api = () => clientApi(stack.synapse);
  const membership = async (name: string) => {
    const state = await api().state(gated, 'm.room.member', stack.users.get(name)!.userId).catch(() => ({ membership: 'none' }));
    return (state as { membership: string }).membership;
  };

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    stack = await startMirrorStack({ names: [CANDIDATE, BY_HAND], rooms: 1, ownPostgres: true });
    gated = (await api().admin('POST', '/createRoom', { preset: 'private_chat', room_version: '11', name: 'Administrators' })).room_id;
    // An invitation the service did not make: it must never take it back.
    await api().admin('POST', `/rooms/${enc(gated)}/invite`, { user_id: stack.users.get(BY_HAND)!.userId });
    stack.writeConfig({ moderation: { rooms: stack.rooms.map((room_id) => ({ room_id })), gated_rooms: [{ room_id: gated, groups: ['sysop'] }] } });
    worker = stack.startWorker();
    await worker.waitFor(/moderation pass done/, 30_000);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('joining the group on the wiki gets the person invited within a pass; someone invited by hand stays', async () => {
    assert.equal(await membership(CANDIDATE), 'none');
    await stack.wiki.userrights(CANDIDATE, { add: ['sysop'] });
    await eventually('the invitation', async () => ((await membership(CANDIDATE)) === 'invite' ? true : undefined));
    const candidate = stack.users.get(CANDIDATE)!;
    await api().call(candidate.accessToken, 'POST', `/join/${enc(gated)}`, {});
    assert.equal(await membership(CANDIDATE), 'join');
    assert.equal(await membership(BY_HAND), 'invite');
    if (stack.db) {
      const invites = (await new ModerationAuditLog(stack.db).list({ userId: candidate.userId, kind: 'invite' })).entries;
      assert.deepEqual(invites.map((e) => [e.outcome, e.cause?.kind, e.cause?.group]), [['applied', 'group', 'sysop']]);
    }
  });

  test('leaving the group removes the person; the hand-made invitation is still there', async () => {
    await stack.wiki.userrights(CANDIDATE, { remove: ['sysop'] });
    await eventually('the removal', async () => ((await membership(CANDIDATE)) === 'leave' ? true : undefined));
    assert.equal(await membership(BY_HAND), 'invite');
  });
});
