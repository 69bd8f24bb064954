// How `forget` finds a person in free text and JSON: MediaWiki's spellings of a name (first letter
// in either case, spaces or underscores), whole words only, Matrix IDs whole, the email in any
// case, the central id never inside a longer number; and when a sign-in's email may be kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emailRequested } from '../../src/privacy/email.ts';
import { Scrubber } from '../../src/privacy/scrub.ts';

const OPAQUE = 'forgotten-0123456789abcdef';

test('names in the spellings MediaWiki treats as the same, and only as whole words', () => {
  const s = new Scrubber({ names: ['Мария Иванова', 'Vandal'], matrixIds: [] }, OPAQUE);
  assert.equal(s.text('Sock of мария_Иванова, see Мария Иванова'), `Sock of ${OPAQUE}, see ${OPAQUE}`);
  assert.equal(s.text('МАРИЯ ИВАНОВА is someone else'), 'МАРИЯ ИВАНОВА is someone else', 'past the first letter, case matters');
  assert.equal(s.text('Vandalism by vandal and Vandal_2'), `Vandalism by ${OPAQUE} and Vandal_2`);
  assert.equal(s.text('User:Vandal.'), `User:${OPAQUE}.`);
});

test('Matrix IDs whole (before the name inside them), the email in any case, the central id as a whole number', () => {
  const s = new Scrubber({ names: ['Vandal'], matrixIds: ['@vandal:example.org'], email: 'Vandal@Example.org', centralId: '4242' }, OPAQUE);
  assert.equal(s.text('@vandal:example.org banned; mail vandal@example.ORG'), `${OPAQUE} banned; mail ${OPAQUE}`);
  assert.equal(s.text('id 4242, block 142420, log 4242'), `id ${OPAQUE}, block 142420, log ${OPAQUE}`);
  assert.equal(s.text('4242'), OPAQUE);
});

test('JSON: every string value, at any depth; keys and numbers are left alone', () => {
  const s = new Scrubber({ names: ['שמעון כהן'], matrixIds: ['@shimon:example.org'], centralId: '77' }, OPAQUE);
  const before = { '@shimon:example.org': 50, userIds: ['@shimon:example.org', '@other:example.org'], record: { userId: '@shimon:example.org' }, by: 'שמעון_כהן', blockId: 77, centralId: '77' };
  const { value, changed } = s.json(before);
  assert.ok(changed);
  assert.deepEqual(value, { '@shimon:example.org': 50, userIds: [OPAQUE, '@other:example.org'], record: { userId: OPAQUE }, by: OPAQUE, blockId: 77, centralId: OPAQUE });
  assert.deepEqual(s.json({ reason: 'nothing here' }), { value: { reason: 'nothing here' }, changed: false });
  assert.deepEqual(s.json(null), { value: null, changed: false });
});

test('the coarse SQL patterns cover every spelling the scrubber finds', () => {
  const s = new Scrubber({ names: ['Мария Иванова'], matrixIds: ['@m_1:example.org'], email: 'm%x@example.org' }, OPAQUE);
  assert.deepEqual(s.likePatterns, ['%ария_Иванова%', '%@m\\_1:example.org%', '%m\\%x@example.org%']);
});

test('an email is kept only for a client that asked for it and may have it', () => {
  assert.equal(emailRequested('openid profile email', ['openid', 'profile', 'email']), true);
  assert.equal(emailRequested('openid profile', ['openid', 'profile', 'email']), false);
  assert.equal(emailRequested('openid email', ['openid', 'profile']), false, 'the client may not have it');
  assert.equal(emailRequested(undefined, ['email']), false);
});
