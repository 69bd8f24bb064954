// The IRC snippets the README shows (config/irc): the service's side is valid configuration for
// the service, and the bridge's side has the shape matrix-appservice-irc reads for
// `ircService.banLists` (its `MatrixBanSyncConfig`: `rooms`, a list of room ids or aliases; the
// bridge joins each at start). The bridge cannot be installed here, so its shape is restated from
// its source rather than taken from its package; test/e2e/irc-bridge.test.ts runs both snippets.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.ts';

const read = (name: string) => readFileSync(new URL(`../../config/irc/${name}`, import.meta.url), 'utf8');
const fill = (text: string, values: Record<string, string>) => text.replace(/\$\{(\w+)\}/g, (_, key: string) => values[key] ?? `\${${key}}`);

const roomRef = z.string().regex(/^[!#][^:]+:.+$/, 'a room id (!…) or alias (#…)');
/** What the bridge reads under ircService.banLists. */
const banListsSchema = z.strictObject({
  rooms: z.array(roomRef).min(1),
  serverBanLists: z.record(z.string(), roomRef).optional(),
});
const bridgeFragment = z.strictObject({ ircService: z.strictObject({ banLists: banListsSchema }) });

const POLICY_ROOM = '!bAnLiStxyz:example.org';
const BRIDGE_BOT = '@ircbridge:example.org';

describe('IRC snippets', () => {
  test('placeholders are the documented ones and nothing else', () => {
    assert.deepEqual([...new Set(read('ban-lists.yaml').match(/\$\{\w+\}/g))], ['${POLICY_ROOM}']);
    assert.deepEqual([...new Set(read('subscriber.yaml').match(/\$\{\w+\}/g))].sort(), ['${BRIDGE_BOT}', '${POLICY_ROOM}']);
  });

  test("the bridge's side has the shape of the bridge's banLists", () => {
    const parsed = bridgeFragment.parse(YAML.parse(fill(read('ban-lists.yaml'), { POLICY_ROOM })));
    assert.deepEqual(parsed.ircService.banLists.rooms, [POLICY_ROOM]);
    // An alias works as well: the bridge joins rooms by id or alias.
    assert.ok(bridgeFragment.safeParse(YAML.parse(fill(read('ban-lists.yaml'), { POLICY_ROOM: '#wiki-bans:example.org' }))).success);
    assert.equal(bridgeFragment.safeParse({ ircService: { banLists: { rooms: ['wiki-bans'] } } }).success, false);
  });

  test("the service's side is valid configuration, naming the same room as the bridge's", () => {
    const base = `oidc:\n  cookie_keys: [${'k'.repeat(40)}]\n  key_encryption_secret: s3cret\nmatrix:\n  server_name: example.org\n`;
    const config = parseConfig(`${base}${fill(read('subscriber.yaml'), { POLICY_ROOM, BRIDGE_BOT })}`, 'subscriber.yaml');
    assert.equal(config.moderation.policy_list?.room_id, POLICY_ROOM);
    assert.deepEqual(config.moderation.policy_list?.subscribers, [BRIDGE_BOT]);
    const bridge = bridgeFragment.parse(YAML.parse(fill(read('ban-lists.yaml'), { POLICY_ROOM })));
    assert.deepEqual(bridge.ircService.banLists.rooms, [config.moderation.policy_list?.room_id]);
  });
});
