import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RESERVED_NAMES, LocalpartConfigError, LocalpartPolicy, localpartFor, normalizeUsername } from '../../src/identity/localpart.ts';

const SERVER = 'wikimedia.org';
const policy = new LocalpartPolicy({ serverName: SERVER, reservedNames: ['wikibot'], reservedPrefixes: ['irc_'] });
const GRAMMAR = /^[a-z0-9._=\-/+]+$/;
const MAS_GRAMMAR = /^[a-z0-9.=_/+-]+$/;

/** Inverts the encoding (for results that were not shortened): `_` → space, `=xx` → UTF-8 bytes. */
function decode(localpart: string): string {
  const bytes: number[] = [];
  for (const piece of localpart.match(/=[0-9a-f]{2}|[^]/g) ?? []) {
    if (piece.startsWith('=')) bytes.push(parseInt(piece.slice(1), 16));
    else bytes.push((piece === '_' ? ' ' : piece).charCodeAt(0));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

const foldAsciiCase = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const raiseAsciiCase = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const isBlank = (s: string) => normalizeUsername(s) === '';

// Names from every corner: any code point, graphemes (emoji, combining marks), RTL scripts, the
// characters the mapping treats specially, and very long ones.
const awkward = fc.constantFrom(' ', '_', '=', '/', '+', '.', '-', '0', '9', 'A', 'z', '\u200F', '\u00A0', '\u0301', 'ערן', 'محمد', '😀', '👩‍👩‍👧', 'Ǆ', 'ß', 'İ');
const usernames = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 60, maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: awkward, maxLength: 80 }),
  fc.stringMatching(/^[0-9]{1,300}$/),
  fc.constantFrom(...DEFAULT_RESERVED_NAMES).map((n) => n[0]!.toUpperCase() + n.slice(1)),
);

function assertAssignable(p: LocalpartPolicy, localpart: string): void {
  assert.match(localpart, GRAMMAR);
  assert.match(localpart, MAS_GRAMMAR);
  assert.doesNotMatch(localpart, /^[0-9]+$/);
  assert.ok(localpart.length <= p.maxLength, `${localpart.length} > ${p.maxLength}`);
  assert.ok(Buffer.byteLength(p.mxid(localpart)) <= 255);
  assert.equal(p.isReserved(localpart), false, `${localpart} is reserved`);
  assert.ok(!localpart.startsWith('_'));
  assert.equal(p.problem(localpart), undefined);
}

describe('localpart mapping', () => {
  it('maps common names readably', () => {
    const table: [string, string][] = [
      ['Jimbo Wales', 'jimbo_wales'],
      ['Jimbo_Wales', 'jimbo_wales'],
      ['Foo-Bar.baz', 'foo-bar.baz'],
      ['Example', 'example'],
      ['JWilson (WMF)', 'jwilson_=28wmf=29'],
      ['Some user 2', 'some_user_2'],
      ['A=B/C+D', 'a=3db=2fc=2bd'],
      ['  Spaced   out_ ', 'spaced_out'],
      ['Ævar Arnfjörð Bjarmason', '=c3=86var_arnfj=c3=b6r=c3=b0_bjarmason'],
    ];
    for (const [name, expected] of table) assert.equal(policy.derive(name), expected, name);
  });

  it('keeps golden examples stable across versions', () => {
    // Changing any of these changes the Matrix ID of users who have not logged in yet: don't.
    const golden: [string, string][] = [
      ['12345', '=312345'],
      ['Admin', '=61dmin'],
      ['MjoLniR', '=6djolnir'],
      ['Room', '=72oom'],
      ['Wikibot', '=77ikibot'],
      ['IRC fan', '=69rc_fan'],
      ['ערן', '=d7=a2=d7=a8=d7=9f'],
      ['محمد', '=d9=85=d8=ad=d9=85=d8=af'],
      ['😀', '=f0=9f=98=80'],
      ['e\u0301', '=c3=a9'], // NFC: the same as "é"
      ['Left\u200Eto right', 'leftto_right'],
      ['x'.repeat(300), `${'x'.repeat(227)}-0d4e2ca9e9cb`],
      ['1'.repeat(300), `${'1'.repeat(227)}-6f631ea1d7c6`],
    ];
    for (const [name, expected] of golden) assert.equal(policy.derive(name), expected, name);
  });

  it('normalises names idempotently', () => {
    fc.assert(
      fc.property(usernames, (name) => assert.equal(normalizeUsername(normalizeUsername(name)), normalizeUsername(name))),
      { numRuns: 2000 },
    );
  });

  it('refuses an empty username', () => {
    for (const name of ['', ' ', '___', '\u200F']) assert.throws(() => policy.derive(name), RangeError);
  });

  it('always yields an assignable localpart, for any username and server name', () => {
    const serverNames = fc.oneof(fc.constant(SERVER), fc.stringMatching(/^[a-z][a-z0-9.-]{0,220}$/));
    fc.assert(
      fc.property(usernames, serverNames, (name, serverName) => {
        const p = new LocalpartPolicy({ serverName, reservedPrefixes: ['irc_'] });
        if (isBlank(name)) return assert.throws(() => p.derive(name), RangeError);
        assertAssignable(p, p.derive(name));
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic, and depends only on the name up to ASCII case and spacing', () => {
    fc.assert(
      fc.property(usernames, (name) => {
        fc.pre(!isBlank(name));
        const again = new LocalpartPolicy({ serverName: SERVER, reservedNames: ['wikibot'], reservedPrefixes: ['irc_'] });
        assert.equal(again.derive(name), policy.derive(name));
        assert.equal(policy.derive(name.replace(/ /g, '_')), policy.derive(name));
        // Case is compared after NFC: "A\u0300" is "À", while "a\u0300" is "à", another name.
        const canonical = normalizeUsername(name);
        assert.equal(policy.derive(raiseAsciiCase(canonical)), policy.derive(name));
        assert.equal(policy.derive(foldAsciiCase(canonical)), policy.derive(name));
      }),
      { numRuns: 1000 },
    );
  });

  it('is a faithful encoding of short names, so different names (up to ASCII case) never share one', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: awkward, maxLength: 40 })), (name) => {
        fc.pre(!isBlank(name) && Buffer.byteLength(name) * 3 <= policy.maxLength); // short enough never to be cut
        assert.equal(decode(policy.derive(name)), foldAsciiCase(normalizeUsername(name)));
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps distinct long names distinct through the hash', () => {
    const long = 'Ü'.repeat(100);
    assert.notEqual(policy.derive(`${long}a`), policy.derive(`${long}b`));
  });

  it('makes suffixed alternatives that stay within bounds', () => {
    assert.equal(policy.withSuffix('jimbo_wales', 2), 'jimbo_wales_2');
    fc.assert(
      fc.property(usernames, fc.integer({ min: 2, max: 1_000_000 }), (name, n) => {
        fc.pre(!isBlank(name));
        const suffixed = policy.withSuffix(policy.derive(name), n);
        assert.ok(suffixed.endsWith(`_${n}`));
        assertAssignable(policy, suffixed);
      }),
      { numRuns: 500 },
    );
    assert.throws(() => policy.withSuffix('abc', 1), RangeError);
  });

  it('explains why a localpart cannot be assigned', () => {
    assert.equal(policy.problem('jimbo_wales'), undefined);
    assert.match(policy.problem('')!, /empty/);
    assert.match(policy.problem('Jimbo')!, /a–z/);
    assert.match(policy.problem('jimbo wales')!, /a–z/);
    assert.match(policy.problem('12345')!, /all digits/);
    assert.match(policy.problem('a'.repeat(policy.maxLength + 1))!, /at most 240/);
    assert.match(policy.problem('admin')!, /reserved/);
    assert.match(policy.problem('_bridge_user')!, /reserved/);
    assert.match(policy.problem('irc_someone')!, /reserved/);
  });

  it('refuses configurations it cannot honour', () => {
    assert.throws(() => new LocalpartPolicy({ serverName: '' }), LocalpartConfigError);
    assert.throws(() => new LocalpartPolicy({ serverName: `${'a'.repeat(230)}.org` }), /too long/);
    assert.throws(() => new LocalpartPolicy({ serverName: SERVER, reservedNames: ['Bad Name'] }), /not a valid localpart/);
    assert.throws(() => new LocalpartPolicy({ serverName: SERVER, reservedPrefixes: ['=6'] }), /cannot start with "="/);
  });

  it('has a one-off helper', () => {
    assert.equal(localpartFor('Jimbo Wales', { serverName: 'example.org' }), 'jimbo_wales');
  });
});
