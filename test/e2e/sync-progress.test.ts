// `sync` shows how far it is, through the real executable against a real MediaWiki and Synapse.
// Here its stderr is a pipe, as in CI or a cron job's log: progress comes as plain lines on stderr
// (never a redrawn bar), a few per phase with the last one complete, and stdout holds only the
// plan or the outcome, so that scripts reading it see nothing new.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { run } from '../support/cli.ts';
import { mediawikiAvailable } from '../support/mediawiki.ts';
import { startMirrorStack, type MirrorStack } from '../support/mirror-stack.ts';
import { skipUnless } from '../support/real-parts.ts';
import { synapseAvailable } from '../support/synapse.ts';

const unavailable = mediawikiAvailable() ?? synapseAvailable();

// More than one batch of the wiki reader (50 accounts a batch), in several scripts.
const SCRIPTS = ['Мария', 'משתמש', '用户', 'Ελένη', 'Ærlig'];
const NAMES = Array.from({ length: 56 }, (_, i) => `${SCRIPTS[i % SCRIPTS.length]} ${i + 1}`);
const BLOCKED = [NAMES[0]!, NAMES[1]!, NAMES[2]!];

const progressLine = /^sync: (reading the wiki|applying the pass): (\d+)\/(\d+) (accounts|actions)$/;

function phases(stderr: string): Map<string, [number, number][]> {
  const seen = new Map<string, [number, number][]>();
  for (const line of stderr.split('\n')) {
    const m = progressLine.exec(line);
    if (!m) continue;
    seen.set(m[1]!, [...(seen.get(m[1]!) ?? []), [Number(m[2]), Number(m[3])]]);
  }
  return seen;
}

describe('sync shows its progress on stderr when it is not a terminal', { skip: skipUnless(unavailable), timeout: 240_000 }, () => {
  let stack: MirrorStack;

  before(async () => {
    if (unavailable) throw new Error(unavailable);
    stack = await startMirrorStack({ names: NAMES, rooms: 1 });
    for (const name of BLOCKED) await stack.wiki.block(name, { reason: 'Spam' });
    stack.writeConfig({ logging: { level: 'warn' } });
  });
  after(async () => {
    await stack?.stop();
  });

  test('--dry-run: the accounts read, batch by batch, then the plan alone on stdout', async () => {
    const { code, stdout, stderr } = await run(['sync', '--dry-run', '--config', stack.configPath]);
    assert.equal(code, 0, stderr);
    const wiki = phases(stderr).get('reading the wiki');
    assert.ok(wiki, `no progress lines on stderr:\n${stderr}`);
    assert.deepEqual(wiki.at(0), [0, NAMES.length]);
    assert.deepEqual(wiki.at(-1), [NAMES.length, NAMES.length]);
    assert.ok(wiki.some(([done]) => done === 50), `expected the first batch of 50 to show: ${JSON.stringify(wiki)}`);
    assert.ok(wiki.length <= 12, `a line per batch or per tenth, not per account: ${wiki.length} lines`);
    assert.equal(phases(stderr).has('applying the pass'), false, 'a dry run applies nothing');
    assert.doesNotMatch(stderr, /\r|\u001b\[/, 'no terminal control characters in a log');
    assert.doesNotMatch(stdout, /^sync:/m);
    assert.match(stdout, new RegExp(`^Dry run: ${NAMES.length} mapped accounts read; ${BLOCKED.length} changes would be made\\. Nothing was changed\\.$`, 'm'));
  });

  test('a real pass: reading, then each action applied, and the outcome alone on stdout', async () => {
    const { code, stdout, stderr } = await run(['sync', '--config', stack.configPath]);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const applying = phases(stderr).get('applying the pass');
    assert.ok(applying, `no progress of the actions:\n${stderr}`);
    const total = applying[0]![1];
    assert.ok(total >= BLOCKED.length, `the plan has the ${BLOCKED.length} bans: ${JSON.stringify(applying)}`);
    assert.deepEqual(applying.at(0), [0, total]);
    assert.deepEqual(applying.at(-1), [total, total]);
    assert.deepEqual(phases(stderr).get('reading the wiki')?.at(-1), [NAMES.length, NAMES.length]);
    assert.doesNotMatch(stdout, /^sync:/m);
    assert.match(stdout, new RegExp(`^Pass [0-9a-f-]+: ${NAMES.length} mapped accounts read; applied ${BLOCKED.length}\\.$`, 'm'));
    for (const name of BLOCKED) assert.deepEqual(await stack.memberships(name), ['ban']);
  });
});
