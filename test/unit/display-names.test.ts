// A wiki rename reaches Matrix as a display name: set when the homeserver still shows the old wiki
// name, left alone when the person chose their own, kept pending while the homeserver cannot be
// reached or the run is dry, and never lost in between.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import pino from 'pino';
import { PostgresAccountRepository } from '../../src/identity/accounts.ts';
import { LocalpartPolicy } from '../../src/identity/localpart.ts';
import { DryRunGateway, MatrixError, NETWORK_ERROR } from '../../src/matrix/index.ts';
import { followRenames } from '../../src/moderation/display-names.ts';
import { backends, type TestDatabase } from '../support/backends.ts';
import { FakeMatrix } from '../support/fake-matrix.ts';

const silent = pino({ level: 'silent' });
const WIKI = 'wiki.example';
const SERVER = 'example.org';

describe('display names follow wiki renames', () => {
  let db: TestDatabase;
  let accounts: PostgresAccountRepository;
  let matrix: FakeMatrix;
  beforeAll(async () => {
    db = await backends()[0]!.open();
    accounts = new PostgresAccountRepository(db, { clock: () => new Date(), localparts: new LocalpartPolicy({ serverName: SERVER }) });
  });
  afterAll(() => db.dispose());

  /** An account that signed in to Matrix as `name`, whose homeserver display name is `displayName`. */
  async function signedIn(centralId: string, name: string, displayName: string | undefined) {
    const account = await accounts.upsertOnLogin({ wiki: WIKI, centralId, username: name });
    const userId = `@${account.localpart}:${SERVER}`;
    await accounts.recordMatrixUserId(WIKI, centralId, userId);
    if (displayName !== undefined) matrix.displayNames.set(userId, displayName);
    return userId;
  }
  const follow = (gateway = matrix) => followRenames({ gateway, accounts, wiki: WIKI, log: silent });

  test('the old wiki name, or none, becomes the new one; a name of the person\'s own stays; each rename is followed once', async () => {
    matrix = new FakeMatrix(`@bot:${SERVER}`);
    const plain = await signedIn('1', 'Old Name', 'Old Name');
    const own = await signedIn('2', 'Chosen', 'Someone Else Entirely');
    const none = await signedIn('3', 'Nameless', undefined);
    await accounts.upsertOnLogin({ wiki: WIKI, centralId: '4', username: 'Never On Matrix' });
    await accounts.recordRename(WIKI, '1', 'Новое имя');
    await accounts.recordRename(WIKI, '2', 'Chosen Later');
    await accounts.recordRename(WIKI, '3', '名前');
    await accounts.recordRename(WIKI, '4', 'Still Never');

    assert.deepEqual(await follow(), { updated: 2, unchanged: 2, pending: 0 });
    assert.equal(matrix.displayNames.get(plain), 'Новое имя');
    assert.equal(matrix.displayNames.get(own), 'Someone Else Entirely');
    assert.equal(matrix.displayNames.get(none), '名前');
    assert.deepEqual(await accounts.renamesToFollow(WIKI, { limit: 10 }), []);
    assert.deepEqual(await follow(), { updated: 0, unchanged: 0, pending: 0 });
  });

  test('two renames before the homeserver is reached: the first name is what it shows, the last is what it gets', async () => {
    matrix = new FakeMatrix(`@bot:${SERVER}`);
    const userId = await signedIn('10', 'First', 'First');
    await accounts.recordRename(WIKI, '10', 'Second');
    await accounts.recordRename(WIKI, '10', 'Third');
    assert.equal((await accounts.findByCentralId(WIKI, '10'))?.renamedFrom, 'First');
    await follow();
    assert.equal(matrix.displayNames.get(userId), 'Third');
  });

  test('a homeserver that cannot be reached, or a dry run, leaves the rename pending; it is followed later', async () => {
    matrix = new FakeMatrix(`@bot:${SERVER}`);
    const userId = await signedIn('20', 'Before Outage', 'Before Outage');
    await accounts.recordRename(WIKI, '20', 'After Outage');
    matrix.fail = (call) => (call.method === 'setDisplayName' ? new MatrixError('admin_set_displayname', { errcode: NETWORK_ERROR, status: 0, retryable: true, detail: 'connect ECONNREFUSED' }) : undefined);
    assert.deepEqual(await follow(), { updated: 0, unchanged: 0, pending: 1 });
    assert.deepEqual(await follow(new DryRunGateway(matrix, silent) as unknown as FakeMatrix), { updated: 0, unchanged: 0, pending: 1 });
    assert.equal(matrix.displayNames.get(userId), 'Before Outage');

    matrix.fail = () => undefined;
    assert.deepEqual(await follow(), { updated: 1, unchanged: 0, pending: 0 });
    assert.equal(matrix.displayNames.get(userId), 'After Outage');
  });

  test('a rename seen at sign-in is followed too', async () => {
    matrix = new FakeMatrix(`@bot:${SERVER}`);
    const userId = await signedIn('30', 'Login Before', 'Login Before');
    await accounts.upsertOnLogin({ wiki: WIKI, centralId: '30', username: 'Login After' });
    await follow();
    assert.equal(matrix.displayNames.get(userId), 'Login After');
  });
});
