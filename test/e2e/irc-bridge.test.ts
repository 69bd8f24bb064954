// IRC users stay on IRC: an IRC bridge follows the service's policy list, end to end on a real
// Synapse, a real MediaWiki and the real worker, configured by the README's snippets
// (config/irc/subscriber.yaml for the service, config/irc/ban-lists.yaml for the bridge). The
// bridge is an application service registered with Synapse; its ban list reading is
// test/support/irc-ban-sync.ts, since matrix-appservice-irc cannot be installed here. The worker
// invites the bridge's bot to the invite-only policy room (once, audited); the bridge joins as its
// `banLists` say; a wiki block becomes a rule that bans the person's Matrix ID for the bridge, and
// the unblock withdraws it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { ModerationAuditLog } from '../../src/moderation/records.ts';
import type { Running } from '../support/cli.ts';
import { startIrcBanSync, type IrcBanSync } from '../support/irc-ban-sync.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { eventually, startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { clientApi, synapseAvailable } from '../support/synapse.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();
const enc = encodeURIComponent;
const snippet = (name: string, values: Record<string, string>) =>
  YAML.parse(readFileSync(new URL(`../../config/irc/${name}`, import.meta.url), 'utf8').replace(/\$\{(\w+)\}/g, (_, key: string) => values[key] ?? `\${${key}}`));

const BLOCKED = 'Иван Петров';
const BYSTANDER = 'שרה כהן';

describe('an IRC bridge follows the policy list', { skip: skipUnless(unavailable), timeout: 240_000 }, () => {
  let bridge: IrcBanSync;
  let stack: MirrorStack;
  let worker: Running;
  let policyRoom: string;
  let bot: string;
  const api = () => clientApi(stack.synapse);
  const membership = async () => ((await api().state(policyRoom, 'm.room.member', bot).catch(() => ({ membership: 'none' }))) as { membership: string }).membership;
  const invites = async () => {
    const filter = enc(JSON.stringify({ types: ['m.room.member'] }));
    const page = await api().admin('GET', `/rooms/${enc(policyRoom)}/messages?dir=b&limit=100&filter=${filter}`);
    return (page.chunk as any[]).filter((e) => e.state_key === bot && e.content.membership === 'invite');
  };
  const auditedInvites = async () => (stack.db ? (await new ModerationAuditLog(stack.db).list({ kind: 'invite_subscriber' })).entries : undefined);
  const userId = (name: string) => stack.users.get(name)!.userId;

  before(async () => {
    if (unavailable) throw new Error(unavailable);
    bridge = await startIrcBanSync();
    stack = await startMirrorStack({ names: [BLOCKED, BYSTANDER], rooms: 1, ownPostgres: true, synapse: { appservices: [bridge.registration] } });
    bot = bridge.botUserId(stack.synapse.serverName);
    // Invite-only: the bridge's bot gets in only through the service's invitation.
    policyRoom = (await api().admin('POST', '/createRoom', { preset: 'private_chat', room_version: '11', name: 'Wiki bans' })).room_id;
    const service = snippet('subscriber.yaml', { POLICY_ROOM: policyRoom, BRIDGE_BOT: bot });
    stack.writeConfig({ moderation: { rooms: stack.rooms.map((room_id) => ({ room_id })), ...service.moderation } });
    worker = stack.startWorker();
    await worker.waitFor(/moderation pass done/, 30_000);
  });
  after(async () => {
    await stack?.stop();
    await bridge?.stop();
  });

  test('the worker invites the bridge bot to the policy room, audited; the bridge is told', async () => {
    assert.equal(await membership(), 'invite');
    const [invite] = await invites();
    assert.equal(invite?.sender, stack.synapse.adminUserId);
    assert.equal(invite?.content.reason, 'Reads the policy list published here (moderation.policy_list.subscribers)');
    const audited = await auditedInvites();
    if (audited) assert.deepEqual(audited.map((e) => [e.roomId, e.userId, e.outcome, e.cause]), [[policyRoom, bot, 'applied', null]]);
    await eventually('the invitation pushed to the bridge', async () => (bridge.events.some((e) => e.type === 'm.room.member' && e.state_key === bot && e.content.membership === 'invite') ? true : undefined));
  });

  test('the bridge joins the rooms of its banLists when it starts; no rule bans anyone yet', async () => {
    const config = snippet('ban-lists.yaml', { POLICY_ROOM: policyRoom });
    await bridge.syncRules(stack.synapse.baseUrl, config.ircService.banLists.rooms);
    assert.equal(await membership(), 'join');
    assert.equal(bridge.isUserBanned(userId(BLOCKED)), false);
  });

  test('the next worker (a full pass at start) does not invite again', async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
    worker = stack.startWorker();
    await worker.waitFor(/moderation pass done/, 30_000);
    assert.equal(await membership(), 'join');
    assert.equal((await invites()).length, 1);
    const audited = await auditedInvites();
    if (audited) assert.equal(audited.length, 1);
  });

  test('a wiki block becomes a rule by which the bridge bans the person, and only them', async () => {
    await stack.wiki.block(BLOCKED, { reason: 'Cross-wiki spam' });
    const reason = await eventually('the rule at the bridge', async () => bridge.isUserBanned(userId(BLOCKED)) || undefined, 30_000);
    assert.match(reason, /^Blocked on test\.wiki \(block #\d+ by .+, indefinitely\): Cross-wiki spam$/);
    assert.equal(bridge.isUserBanned(userId(BYSTANDER)), false);
  });

  test('the unblock withdraws the rule: the bridge lets the person back', async () => {
    await stack.wiki.unblock(BLOCKED);
    await eventually('the withdrawal at the bridge', async () => (bridge.isUserBanned(userId(BLOCKED)) === false ? true : undefined), 30_000);
    const withdrawn = bridge.events.filter((e) => e.type === 'm.policy.rule.user' && Object.keys(e.content).length === 0);
    assert.equal(withdrawn.length, 1, 'one withdrawal, `{}` under the same state key');
  });
});
