import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { parseWikiProfile, ProfileFormatError, type VisibleWikiProfile } from '../../src/wiki/profile.ts';

const current = {
  sub: '12345',
  username: 'Ada Lovelace',
  editcount: 42,
  confirmed_email: true,
  email_verified: true,
  blocked: false,
  registered: '20240131235959',
  groups: ['sysop', '*', 'user', 'autoconfirmed'],
  rights: ['read', 'edit', 'block'],
  grants: ['mwoauth-authonlyprivate'],
  realname: 'Augusta Ada King',
  email: 'ada@example.org',
};

function visible(json: unknown): VisibleWikiProfile {
  const profile = parseWikiProfile(json);
  assert.equal(profile.hidden, false);
  return profile as VisibleWikiProfile;
}

describe('parseWikiProfile', () => {
  it('reads a current profile with the private scope', () => {
    assert.deepEqual(visible(current), {
      hidden: false,
      centralId: '12345',
      attached: true,
      username: 'Ada Lovelace',
      editCount: 42,
      emailVerified: true,
      email: 'ada@example.org',
      realName: 'Augusta Ada King',
      blocked: false,
      registered: new Date(Date.UTC(2024, 0, 31, 23, 59, 59)),
      groups: ['sysop', '*', 'user', 'autoconfirmed'],
      rights: ['read', 'edit', 'block'],
      grants: ['mwoauth-authonlyprivate'],
    });
  });

  const cases: Array<{ name: string; json: Record<string, unknown>; expect: Partial<VisibleWikiProfile> }> = [
    {
      name: 'identity-only scope: no realname/email fields at all',
      json: { ...current, realname: undefined, email: undefined, grants: ['mwoauth-authonly'] },
      expect: { email: undefined, realName: undefined, grants: ['mwoauth-authonly'] },
    },
    {
      name: 'current wiki, unconfirmed address: email "" is absent',
      json: { ...current, confirmed_email: false, email_verified: false, email: '' },
      expect: { emailVerified: false, email: undefined },
    },
    {
      name: 'MW 1.39: numeric sub, no email_verified, confirmed_email true',
      json: { ...current, sub: 12345, email_verified: undefined },
      expect: { centralId: '12345', attached: true, emailVerified: true, email: 'ada@example.org' },
    },
    {
      name: 'MW 1.39: unconfirmed address is sent anyway and must be dropped',
      json: { ...current, sub: 12345, email_verified: undefined, confirmed_email: false, email: 'unverified@example.org' },
      expect: { emailVerified: false, email: undefined },
    },
    {
      name: 'email_verified wins over confirmed_email when both are present',
      json: { ...current, confirmed_email: true, email_verified: false },
      expect: { emailVerified: false, email: undefined },
    },
    { name: 'unattached: sub "0"', json: { ...current, sub: '0' }, expect: { centralId: '0', attached: false } },
    { name: 'unattached: sub "" ((string)false)', json: { ...current, sub: '' }, expect: { centralId: '0', attached: false } },
    { name: 'unattached, old wiki: sub false', json: { ...current, sub: false }, expect: { centralId: '0', attached: false } },
    { name: 'unattached, old wiki: sub 0', json: { ...current, sub: 0 }, expect: { centralId: '0', attached: false } },
    { name: 'registration unknown (very old account): null', json: { ...current, registered: null }, expect: { registered: null } },
    { name: 'registration unknown, old wiki: false', json: { ...current, registered: false }, expect: { registered: null } },
    {
      name: 'ISO 8601 registration is tolerated',
      json: { ...current, registered: '2024-01-31T23:59:59Z' },
      expect: { registered: new Date(Date.UTC(2024, 0, 31, 23, 59, 59)) },
    },
    { name: 'empty realname is absent', json: { ...current, realname: '' }, expect: { realName: undefined } },
    { name: 'blocked user', json: { ...current, blocked: true }, expect: { blocked: true } },
    { name: 'unknown extra fields are ignored', json: { ...current, iss: 'https://meta.wikimedia.org' }, expect: { username: 'Ada Lovelace' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const profile = visible(c.json);
      for (const [key, value] of Object.entries(c.expect)) {
        assert.deepEqual(profile[key as keyof VisibleWikiProfile], value, key);
      }
    });
  }

  it('reads a suppressed (hidden) user, who is only {sub, blocked: true}', () => {
    assert.deepEqual(parseWikiProfile({ sub: '777', blocked: true }), { hidden: true, blocked: true, centralId: '777', attached: true });
    assert.deepEqual(parseWikiProfile({ sub: 777, blocked: true }), { hidden: true, blocked: true, centralId: '777', attached: true });
  });

  const malformed: Array<{ name: string; json: unknown; field: string }> = [
    { name: 'not an object', json: ['x'], field: '(body)' },
    { name: 'null', json: null, field: '(body)' },
    { name: 'missing username (and not hidden)', json: { sub: '1', blocked: false }, field: 'username' },
    { name: 'sub not a number', json: { ...current, sub: 'abc' }, field: 'sub' },
    { name: 'sub negative', json: { ...current, sub: -1 }, field: 'sub' },
    { name: 'sub missing', json: { ...current, sub: undefined }, field: 'sub' },
    { name: 'hidden user with a bad sub', json: { sub: 'x', blocked: true }, field: 'sub' },
    { name: 'editcount a string', json: { ...current, editcount: '42' }, field: 'editcount' },
    { name: 'blocked missing', json: { ...current, blocked: undefined }, field: 'blocked' },
    { name: 'groups not an array', json: { ...current, groups: 'sysop' }, field: 'groups' },
    { name: 'rights holds a number', json: { ...current, rights: ['read', 3] }, field: 'rights.1' },
    { name: 'grants missing', json: { ...current, grants: undefined }, field: 'grants' },
    { name: 'registered garbage', json: { ...current, registered: 'yesterday' }, field: 'registered' },
    { name: 'registered impossible date', json: { ...current, registered: '20241399000000' }, field: 'registered' },
    { name: 'no email flag at all', json: { ...current, confirmed_email: undefined, email_verified: undefined }, field: 'email_verified' },
    { name: 'email_verified a string', json: { ...current, email_verified: 'yes' }, field: 'email_verified' },
  ];
  for (const c of malformed) {
    it(`refuses ${c.name}, naming the field`, () => {
      assert.throws(
        () => parseWikiProfile(c.json),
        (error: unknown) => error instanceof ProfileFormatError && error.field === c.field,
      );
    });
  }
});
