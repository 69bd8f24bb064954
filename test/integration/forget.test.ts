// Forgetting a person, on both backends, through the real sign-in flow and the real moderation
// executor (over an in-memory homeserver): the email is only stored when the client asked for it;
// after `forget` no text column of any table holds the person's username, display name, email or
// central id; their audit entries are kept (and counted) under an opaque id; a ban stays in
// Matrix and is never lifted by the next full pass, which takes the power level back; and the
// person signing in again gets a fresh account.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as client from 'openid-client';
import pino from 'pino';
import { accountRepository, wikiIdOf } from '../../src/compose.ts';
import type { Database } from '../../src/db/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { ModerationAuditLog, ModerationRecordStore } from '../../src/moderation/records.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import { endAccountSessions } from '../../src/oidc/logout.ts';
import { ForgetRefusedError, forgetPerson } from '../../src/privacy/forget.ts';
import { settleForgotten } from '../../src/privacy/forgotten.ts';
import type { WikiBlock } from '../../src/wiki/action-api-results.ts';
import { backends } from '../support/backends.ts';
import { Browser } from '../support/browser.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';
import { RelyingParty, editor, startStack, type Stack } from '../support/login-stack.ts';
import { findText } from '../support/personal-data.ts';

const silent = pino({ level: 'silent' });
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const ROOM = '!lobby:example.org';
const POLICY = '!policy:example.org';

const PERSON = { centralId: 48151623, username: 'Мария Иванова-Ткач', email: 'maria.tkach@example.org' };
const PERSON_MXID = `@mariya_ivanova-tkach:${SERVER}`;
const OTHER = { centralId: 777001, username: 'שמעון כהן' };

function block(fields: Partial<WikiBlock>): WikiBlock {
  return {
    id: 9001, user: '', userId: 0, by: 'Steward', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: null, reason: 'Harassment',
    sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
    anonOnly: false, noCreate: false, autoblock: false, noEmail: false, allowUserTalk: true, hidden: false, ...fields,
  };
}

for (const backend of backends()) {
  describe(`forget on ${backend.name}`, () => {
    let stack: Stack;
    let db: Database;
    let rp: RelyingParty;
    let disposeDb: (() => Promise<void>) | undefined;
    const matrix = new FakeMatrix(BOT);
    const moderation = moderationConfigSchema.parse({
      rooms: [{ room_id: ROOM }],
      // Global sanctions only: the in-memory homeserver does not show published rules back, so
      // a local block's rule would be published again at every pass.
      policy_list: { room_id: POLICY, bans: 'global' },
    });

    before(async () => {
      let databaseUrl: string | undefined;
      if (backend.name === 'postgres') {
        const opened = await backend.open({ migrated: false });
        databaseUrl = opened.url;
        await opened.close();
        disposeDb = () => opened.dispose();
      }
      stack = await startStack({ ...(databaseUrl && { databaseUrl }) });
      db = stack.service.db;
      rp = await RelyingParty.discover(stack.issuer);
      matrix.addRoom(ROOM, { members: [PERSON_MXID] });
      matrix.addRoom(POLICY);
    });
    after(async () => {
      await stack.stop();
      await disposeDb?.();
    });

    const wiki = () => wikiIdOf(stack.config);
    const signIn = async (who: { centralId: number; username: string; email?: string }, scope: string) => {
      stack.wiki.login = { user: editor({ ...who, groups: [] }) };
      const { request, back } = await rp.signIn(new Browser(), { scope });
      assert.ok(back.location, `the sign-in of ${who.username} ended at ${back.url}: ${back.body.slice(0, 300)}`);
      return { back, tokens: await rp.exchange(back.location, request) };
    };
    const storedEmail = async () =>
      (await db.query<{ email: string | null }>('SELECT email FROM wiki_profiles WHERE central_id = $1', [String(PERSON.centralId)])).rows[0]?.email;
    const executor = () =>
      new ModerationExecutor({
        db, gateway: matrix, log: silent, moderation, serverName: SERVER,
        revokeAccount: (accountId) => endAccountSessions({ db, config: stack.config, log: silent }, accountId),
      });
    const userState = (account: { centralId: string; username: string; localpart: string }, fields: Partial<Omit<WikiUserState, 'account'>> = {}): WikiUserState => ({
      account: { wiki: wiki(), ...account }, blocks: [], globalBlocks: [], lock: null, groups: [], globalGroups: [], ...fields,
    });
    const countsByKind = async () =>
      Object.fromEntries((await db.query<{ kind: string; n: number }>('SELECT kind, count(*)::int AS n FROM moderation_audit GROUP BY kind ORDER BY kind')).rows.map((r) => [r.kind, r.n]));
    const personal = [PERSON.username, PERSON.username.replace(/ /g, '_'), PERSON.email, String(PERSON.centralId)];

    test('the email is stored only when the relying party asked for it', async () => {
      const without = await signIn(PERSON, 'openid profile wiki');
      assert.equal(await storedEmail(), null, 'no email scope: no email stored');
      const info = await client.fetchUserInfo(rp.config, without.tokens.access_token, String(PERSON.centralId));
      assert.equal(info.email, undefined);

      const withEmail = await signIn(PERSON, 'openid profile email wiki');
      assert.equal(await storedEmail(), PERSON.email);
      const infoWith = await client.fetchUserInfo(rp.config, withEmail.tokens.access_token, String(PERSON.centralId));
      assert.equal(infoWith.email, PERSON.email);
    });

    test('forget: nothing personal remains, the audit keeps counting, a ban stays, the level goes, a new sign-in starts afresh', async () => {
      await signIn(OTHER, 'openid profile wiki');
      const accounts = accountRepository(db, stack.config);
      const person = (await accounts.findByCentralId(wiki(), String(PERSON.centralId)))!;
      assert.equal(person.localpart, 'mariya_ivanova-tkach');
      // The person once chose another account's localpart, as an admin: their name is on it.
      const other = await accounts.setLocalpart(wiki(), String(OTHER.centralId), 'shimon', PERSON.username);
      const otherMxid = `@${other.localpart}:${SERVER}`;
      matrix.addRoom(ROOM, { members: [PERSON_MXID, otherMxid] });

      const otherBlock = block({ id: 9002, user: other.username, userId: OTHER.centralId, by: PERSON.username, reason: `Sock of an account ${PERSON.username.replace(/ /g, '_')} reported` });
      // A pass: the person is globally locked (sessions ended, banned, a policy rule), and the
      // other account is blocked by the person, with a reason that names them.
      const first = await executor().run({
        wiki: wiki(),
        complete: true,
        users: [
          userState(person, { lock: { logId: 31337, by: 'Steward', reason: `Harassment; see the report by ${OTHER.username}`, timestamp: new Date('2030-01-01T00:00:00Z'), hidden: false } }),
          userState(other, { blocks: [otherBlock] }),
        ],
      } satisfies WikiState);
      assert.ok(first.results.every((r) => r.outcome === 'applied'), JSON.stringify(first.results.map((r) => [r.action.kind, r.outcome, r.error])));
      assert.equal(matrix.rooms.get(ROOM)!.bans.get(PERSON_MXID)?.sender, BOT);
      // A power level the service set for them earlier (a group it mirrors), still in force.
      const records = new ModerationRecordStore(db);
      const levelCause = { kind: 'group' as const, wiki: wiki(), blockId: null, logId: null, by: null, reason: '', timestamp: null, expiry: null, group: 'sysop', hidden: false };
      const content = { ...(await matrix.roomSnapshot(ROOM)).powerLevels, users: { [BOT]: 100, [PERSON_MXID]: 50 } };
      await matrix.setPowerLevels(ROOM, content);
      await records.apply(await records.load(), [{ kind: 'set_power_levels', roomId: ROOM, content, changes: [{ userId: PERSON_MXID, from: null, to: 50, cause: levelCause }] }], [{
        at: new Date(), passId: 'earlier', dryRun: false, kind: 'set_power_levels', roomId: ROOM, userId: PERSON_MXID, cause: levelCause, outcome: 'applied', error: null, detail: { from: null, to: 50 },
      }]);
      // A back-channel logout still to be delivered, for their session.
      await db.query("INSERT INTO backchannel_logouts (client_id, sub, sid, next_attempt_at, expires_at) VALUES ('homeserver', $1, 'sid-1', now(), now() + interval '1 day')", [String(PERSON.centralId)]);

      assert.ok((await findText(db, personal)).length > 0, 'the person is in the database before');
      const before = await countsByKind();
      const { rows: own } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM moderation_audit WHERE user_id = $1 OR detail->>'centralId' = $2", [PERSON_MXID, String(PERSON.centralId)]);
      assert.ok(own[0]!.n >= 4, `the person's audit entries: ${own[0]!.n}`);

      await assert.rejects(forgetPerson({ db, config: stack.config }, PERSON.username, { performedBy: ' ' }), ForgetRefusedError);
      assert.equal(await forgetPerson({ db, config: stack.config }, 'Nobody Here', { performedBy: 'Operator' }), undefined);

      // A dry run tells all and changes nothing.
      const planned = await forgetPerson({ db, config: stack.config }, 'Мария_Иванова-Ткач', { performedBy: 'Operator', dryRun: true });
      assert.ok(planned?.dryRun);
      assert.equal(planned.person.centralId, String(PERSON.centralId));
      assert.deepEqual(planned.handedOver.map((h) => h.kind).sort(), ['ban', 'policy_rule']);
      assert.deepEqual(planned.takenBack.map((t) => [t.kind, t.roomId, t.level]), [['level', ROOM, 50]]);
      assert.deepEqual(await countsByKind(), before);
      assert.ok(await accounts.findByCentralId(wiki(), String(PERSON.centralId)), 'still there after the dry run');

      const done = (await forgetPerson({ db, config: stack.config }, PERSON_MXID, { performedBy: 'Operator Ωμέγα' }))!;
      assert.equal(done.dryRun, false);
      assert.match(done.opaqueId, /^forgotten-[0-9a-f]{16}$/);
      assert.deepEqual({ accounts: done.erased.accounts, wikiProfiles: done.erased.wikiProfiles, pendingLogouts: done.erased.pendingLogouts, sessionEnds: done.erased.sessionEnds }, {
        accounts: 1, wikiProfiles: 1, pendingLogouts: 1, sessionEnds: 1,
      });
      assert.ok(done.erased.signIns >= 2, `sign-ins erased: ${done.erased.signIns}`);
      assert.equal(done.audit.reKeyed, own[0]!.n);
      assert.ok(done.audit.mentionsRemoved >= 2, `mentions removed: ${done.audit.mentionsRemoved}`);

      // Nothing personal left, in any text column of any table.
      assert.deepEqual(await findText(db, personal), []);
      // The Matrix ID is left only where the level still has to be taken back.
      assert.deepEqual(new Set((await findText(db, [PERSON_MXID])).map((f) => f.table)), new Set(['moderation_records', 'forgotten_matrix_ids']));
      // Every action still counted, now under the opaque id; the forget itself is audited.
      assert.deepEqual(await countsByKind(), { ...before, forget_account: 1 });
      const kept = await new ModerationAuditLog(db).list({ userId: done.opaqueId, limit: 1000 });
      assert.equal(kept.entries.length, own[0]!.n + 1);
      const forgetEntry = kept.entries.find((e) => e.kind === 'forget_account')!;
      assert.equal(forgetEntry.detail.by, 'Operator Ωμέγα');
      const otherBan = (await new ModerationAuditLog(db).list({ userId: otherMxid, kind: 'ban' })).entries[0]!;
      assert.equal(otherBan.cause?.by, done.opaqueId, 'the blocker is named by the opaque id');
      assert.match(String(otherBan.detail.reason), new RegExp(`by ${done.opaqueId}.*Sock of an account ${done.opaqueId} reported`));

      // The next full pass (the person is no longer a mapped account) lifts nothing it handed
      // over, and takes the level back.
      const pass = await executor().run({ wiki: wiki(), complete: true, users: [userState(other, { blocks: [otherBlock] })] });
      assert.ok(!pass.results.some((r) => r.action.kind === 'unban' || r.action.kind === 'retract_policy'), JSON.stringify(pass.results.map((r) => r.action.kind)));
      const room = matrix.rooms.get(ROOM)!;
      assert.equal(room.bans.get(PERSON_MXID)?.sender, BOT, 'the ban on the old Matrix ID stays');
      assert.equal((await matrix.roomSnapshot(ROOM)).powerLevels.users?.[PERSON_MXID], undefined, 'the level is taken back');
      assert.equal(matrix.rooms.get(POLICY)!.state.get(`m.policy.rule.user\u0000rule:${PERSON_MXID}`)?.entity, PERSON_MXID, 'the policy rule stays published');
      // The leader finishes the forget: the entries that pass wrote are re-keyed (the service's
      // own leader may have done it already on PGlite), and the Matrix ID is gone from the database.
      await settleForgotten(db, stack.config);
      assert.deepEqual(await findText(db, [PERSON_MXID, ...personal]), []);
      assert.equal((await new ModerationAuditLog(db).list({ userId: done.opaqueId, kind: 'set_power_levels' })).entries.length, 2);

      // Signing in again: a fresh account, and the sanction's refusal went with the forget.
      const forgotAt = new Date();
      const again = await signIn(PERSON, 'openid profile wiki');
      const fresh = (await accounts.findByCentralId(wiki(), String(PERSON.centralId)))!;
      assert.ok(fresh.createdAt.getTime() >= forgotAt.getTime() - 1000, 'a new account');
      assert.equal(fresh.localpart, 'mariya_ivanova-tkach');
      const info = await client.fetchUserInfo(rp.config, again.tokens.access_token, String(PERSON.centralId));
      assert.equal(info.name, PERSON.username);
    });
  });
}
