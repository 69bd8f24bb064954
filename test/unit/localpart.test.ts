import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RESERVED_NAMES, LocalpartConfigError, LocalpartPolicy, canonicalUsername, isHomeserverStable, localpartFor, normalizeUsername } from '../../src/identity/localpart.ts';
import { synapseMapUsername } from '../support/synapse-localpart.ts';

const SERVER = 'wikimedia.org';
const policy = new LocalpartPolicy({ serverName: SERVER, reservedNames: ['wikibot'], reservedPrefixes: ['irc_'] });
const GRAMMAR = /^[a-z0-9._=\-/+]+$/;
const MAS_GRAMMAR = /^[a-z0-9.=_/+-]+$/;

const foldAsciiCase = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const raiseAsciiCase = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const isBlank = (s: string) => normalizeUsername(s) === '';

// Names from every corner: any code point, graphemes (emoji, combining marks), RTL scripts, the
// characters the mapping treats specially, and very long ones.
const awkward = fc.constantFrom(' ', '_', '=', '/', '+', '.', '-', "'", '’', '0', '9', 'A', 'z', '\u200F', '\u00A0', '\u0301', '\u0000', '\uD800', 'ערן', 'محمد', '😀', '👩‍👩‍👧', 'Ǆ', 'ß', 'İ', 'Ж', 'ω', 'क्ष', '北', 'ไ', '①', '(', '!');
const usernames = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 60, maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: awkward, maxLength: 80 }),
  fc.stringMatching(/^[0-9]{1,300}$/),
  fc.constantFrom(...DEFAULT_RESERVED_NAMES).map((n) => n[0]!.toUpperCase() + n.slice(1)),
);

function assertAssignable(p: LocalpartPolicy, localpart: string): void {
  // The homeserver must create exactly this localpart: Synapse re-maps it, MAS only validates it.
  assert.equal(synapseMapUsername(localpart), localpart, `Synapse would change ${localpart}`);
  assert.ok(isHomeserverStable(localpart));
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
  it('ports Synapse\'s map_username_to_mxid_localpart faithfully', () => {
    // Outputs of the real function (Synapse 1.163.2, synapse.types.map_username_to_mxid_localpart).
    const real: [string, string][] = [
      ['Ænglisc', '=c3=86nglisc'],
      ['=c3=86nglisc', '=3dc3=3d86nglisc'],
      ['_bridge', '=5fbridge'],
      ['Jimbo Wales', 'jimbo=20wales'],
      ["O'Brien", 'o=27brien'],
      ['a/b+c', 'a/b+c'],
      ['ÀÉ', '=c3=80=c3=89'],
      ['😀', '=f0=9f=98=80'],
      ['ΣΑΣ', '=ce=a3=ce=91=ce=a3'],
      ['İx', '=c4=b0x'],
      ['__x', '=5f_x'],
      ['x_y', 'x_y'],
      ['A=B', 'a=3db'],
    ];
    for (const [name, mapped] of real) assert.equal(synapseMapUsername(name), mapped, name);
  });

  it('maps names of every script readably, to localparts the homeserver keeps', () => {
    const table: [string, string][] = [
      ['Jimbo Wales', 'jimbo_wales'],
      ['Jimbo_Wales', 'jimbo_wales'],
      ['Foo-Bar.baz', 'foo-bar.baz'],
      ['JWilson (WMF)', 'jwilson_wmf'],
      ['Some user 2', 'some_user_2'],
      ['A=B/C+D', 'a-b-c-d'],
      ['  Spaced   out_ ', 'spaced_out'],
      ["O'Brien", 'obrien'],
      ['O’Brien', 'obrien'],
      ['Ævar Arnfjörð Bjarmason', 'aevar_arnfjord_bjarmason'],
      ['Ænglisc', 'aenglisc'],
      ['Łukasz Żółć', 'lukasz_zolc'],
      ['Straße', 'strasse'],
      ['İstanbul', 'istanbul'],
      ['Мария', 'mariya'],
      ['Ελληνικά', 'ellinika'],
      ['محمد', 'mhmd'],
      ['ערן', 'rn'],
      ['देवनागरी', 'devnagri'],
      ['北京', 'beijing'],
      ['東京都', 'dongjingdou'],
      ['한국어', 'hangugeo'],
      ['ภาษาไทย', 'phasaaithy'],
      ['😀', 'grinning'],
      ['👩‍👩‍👧', 'woman-woman-girl'],
      ['e\u0301', 'e'],
      ['Left\u200Eto right', 'leftto_right'],
    ];
    for (const [name, expected] of table) {
      assert.equal(policy.derive(name), expected, name);
      assertAssignable(policy, expected);
    }
  });

  it('gives reserved, all-digit and unreadable names a readable way out', () => {
    const golden: [string, string][] = [
      ['12345', '12345_wiki'],
      ['Admin', 'admin_wiki'],
      ['MjoLniR', 'mjolnir_wiki'],
      ['Room', 'room_wiki'],
      ['Wikibot', 'wikibot_wiki'],
      ['IRC fan', 'wiki-irc_fan'],
      ['_Bridge', 'bridge_wiki'],
      ['!!!', 'wiki-user-e84c538e7fe2'],
      ['...', 'wiki-user-ab5df625bc76'],
      ['x'.repeat(300), `${'x'.repeat(227)}-0d4e2ca9e9cb`],
      ['1'.repeat(300), `${'1'.repeat(227)}-6f631ea1d7c6`],
    ];
    for (const [name, expected] of golden) {
      assert.equal(policy.derive(name), expected, name);
      assertAssignable(policy, expected);
    }
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

  it('is a fixed point of Synapse\'s mapping for arbitrary Unicode', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: awkward, maxLength: 60 })), (name) => {
        fc.pre(!isBlank(name));
        const localpart = policy.derive(name);
        assert.equal(synapseMapUsername(localpart), localpart);
      }),
      { numRuns: 3000 },
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
    assert.match(policy.problem('=c3=86nglisc')!, /Synapse would escape/);
    assert.match(policy.problem('_x')!, /cannot start with "_"/);
    assert.equal(policy.problem('ac/dc+1'), undefined);
    assert.match(policy.problem('12345')!, /all digits/);
    assert.match(policy.problem('a'.repeat(policy.maxLength + 1))!, /at most 240/);
    assert.match(policy.problem('admin')!, /reserved/);
    assert.match(policy.problem('_bridge_user')!, /cannot start with "_"/);
    assert.match(policy.problem('irc_someone')!, /reserved/);
  });

  it('refuses configurations it cannot honour', () => {
    assert.throws(() => new LocalpartPolicy({ serverName: '' }), LocalpartConfigError);
    assert.throws(() => new LocalpartPolicy({ serverName: `${'a'.repeat(230)}.org` }), /too long/);
    assert.throws(() => new LocalpartPolicy({ serverName: SERVER, reservedNames: ['Bad Name'] }), /not a valid localpart/);
    assert.throws(() => new LocalpartPolicy({ serverName: SERVER, reservedPrefixes: ['wiki-'] }).derive('!!!'), /reserve less/);
  });

  it('has a one-off helper', () => {
    assert.equal(localpartFor('Jimbo Wales', { serverName: 'example.org' }), 'jimbo_wales');
  });
});

it("canonicalUsername spells a name as the wiki stores it, first letter upper-cased in every script", () => {
  const cases: [string, string][] = [
    ['jimbo_Wales', 'Jimbo Wales'],
    ['марина_Блокова', 'Марина Блокова'],
    ['ωmega', 'Ωmega'],
    ['ǆemal', 'Ǆemal'],
    ['𐐨𐐯', '𐐀𐐯'],
    ['ßtraße', 'ßtraße'],
    ['ნიკა', 'ნიკა'],
    ['山田_太郎', '山田 太郎'],
    ['  דוד__הסוקר ', 'דוד הסוקר'],
  ];
  for (const [typed, stored] of cases) {
    assert.equal(canonicalUsername(typed), stored, typed);
  }
});
