// Moderation acts on the Matrix ID the homeserver reports, read once and stored: a person Synapse
// gave another ID than the service proposed is banned under Synapse's; one who never signed in to
// the homeserver is left out (never banned under an invented ID); a lookup that fails fails the
// pass instead of reading as "never signed in".
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import pino from 'pino';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { MatrixError, NETWORK_ERROR } from '../../src/matrix/index.ts';
import { moderationConfigSchema } from '../../src/moderation/config.ts';
import { ModerationExecutor } from '../../src/moderation/executor.ts';
import { resolveIds, withHomeserverIds } from '../../src/moderation/matrix-ids.ts';
import type { WikiState, WikiUserState } from '../../src/moderation/types.ts';
import type { WikiBlock } from '../../src/wiki/action-api-results.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const silent = pino({ level: 'silent' });
const SERVER = 'example.org';
const IDP = 'oidc-wikimedia';
const WIKI = 'wiki.example';
const ROOM = '!room:example.org';
const BLOCK: WikiBlock = {
  id: 7, user: 'x', userId: 1, by: 'Admin', timestamp: new Date('2030-01-01T00:00:00Z'), expiry: null,
  reason: 'Vandalism', sitewide: true, restrictions: { pages: [], namespaces: [], actions: [] },
  anonOnly: false, noCreate: true, autoblock: true, noEmail: false, allowUserTalk: true, hidden: false,
};

describe('the Matrix ID the homeserver reports', () => {
  let db: TestDatabase;
  let accounts: PostgresAccountRepository;
  beforeAll(async () => {
    db = await backends()[0]!.open();
    accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: SERVER }) });
  });
  afterAll(() => db.dispose());

  async function blockedUser(centralId: string, username: string): Promise<WikiUserState> {
    const account = await accounts.upsertOnLogin({ wiki: WIKI, centralId, username });
    return { account, blocks: [{ ...BLOCK, user: username }], globalBlocks: [], lock: null, groups: [], globalGroups: [] };
  }

  test('bans under the homeserver\'s ID, leaves out who never signed in there, and asks once', async () => {
    const matrix = new FakeMatrix(`@bot:${SERVER}`);
    matrix.addRoom(ROOM);
    // Synapse suffixed this one (its own user held "aenglisc"); this one never signed in to Matrix.
    matrix.externalIds.set(`${IDP} 101`, `@aenglisc1:${SERVER}`);
    const state: WikiState = { wiki: WIKI, users: [await blockedUser('101', 'Ænglisc'), await blockedUser('102', 'Мария')], complete: true };
    const options = { gateway: matrix, accounts, authProvider: IDP, serverName: SERVER, log: silent };

    const resolved = await resolveIds(state, options);
    assert.deepEqual(resolved.users.map((u) => u.account.matrixUserId), [`@aenglisc1:${SERVER}`]);
    assert.equal((await accounts.findByCentralId(WIKI, '101'))?.matrixUserId, `@aenglisc1:${SERVER}`, 'stored');
    assert.ok((await accounts.findByCentralId(WIKI, '102'))?.matrixUserIdCheckedAt, 'the unanswered check is kept too');

    const executor = new ModerationExecutor({ db, gateway: matrix, log: silent, moderation: moderationConfigSchema.parse({ rooms: [{ room_id: ROOM }] }), serverName: SERVER, dryRun: false });
    const result = await executor.run(resolved);
    assert.deepEqual(result.results.filter((r) => r.action.kind === 'ban').map((r) => 'userId' in r.action && r.action.userId), [`@aenglisc1:${SERVER}`]);
    assert.deepEqual([...matrix.rooms.get(ROOM)!.bans.keys()], [`@aenglisc1:${SERVER}`], 'nobody is banned under an invented ID');

    // Once stored, the ID is not asked for again.
    const asked = matrix.lookups.length;
    const source = withHomeserverIds(
      { fullPass: async () => ({ ...state, users: [{ ...state.users[0]!, account: (await accounts.findByCentralId(WIKI, '101'))! }] }), targeted: async () => state },
      options,
    );
    assert.equal((await source.fullPass()).users[0]!.account.matrixUserId, `@aenglisc1:${SERVER}`);
    assert.equal(matrix.lookups.length, asked);
  });

  test('a lookup that fails fails the pass; it never reads as "never signed in"', async () => {
    const matrix = new FakeMatrix(`@bot:${SERVER}`);
    matrix.failLookup = () => new MatrixError('auth_provider_user', { errcode: NETWORK_ERROR, status: 0, retryable: true, detail: 'connection refused' });
    const state: WikiState = { wiki: WIKI, users: [await blockedUser('103', 'Down Time')], complete: false };
    await assert.rejects(resolveIds(state, { gateway: matrix, accounts, authProvider: IDP, serverName: SERVER, log: silent }), MatrixError);
    assert.equal((await accounts.findByCentralId(WIKI, '103'))?.matrixUserIdCheckedAt, undefined);
  });
});
