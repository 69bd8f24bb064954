import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from '@jest/globals';
import { configJsonSchema, renderSample, withReference } from '../../src/config/generate.ts';
import { ConfigError, parseConfig, redact } from '../../src/config/load.ts';
import { SCHEMA_PATH } from '../../src/config/paths.ts';

const KEY = 'k'.repeat(32);
const minimal = `matrix:\n  server_name: example.org\noidc:\n  cookie_keys: [${KEY}]\n  key_encryption_secret: s3cret\n`;

function problems(yaml: string, env = {}): string[] {
  try {
    parseConfig(yaml, 'test.yaml', env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.match(error.message, /^test\.yaml: invalid configuration/);
    return error.problems;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('configuration', () => {
  test('a minimal file gets every default', () => {
    const config = parseConfig(minimal, 'test.yaml');
    assert.equal(config.http.port, 8080);
    assert.equal(config.database.url, undefined);
    assert.equal(config.wiki.base_url, 'https://meta.wikimedia.org/w');
    assert.deepEqual(config.oidc.cookie_keys, [KEY]);
  });

  test('unknown keys are errors naming their dotted path', () => {
    assert.deepEqual(problems(`${minimal}http:\n  prot: 80\n`), ['http.prot: unknown key']);
    assert.deepEqual(problems(`${minimal}surprise: 1\n`), ['surprise: unknown key']);
    const nested = `${minimal}  clients:\n    - client_id: hs\n      client_secret: x\n      redirect_uris: [https://hs.example/cb]\n      redirect_uri: https://x\n`;
    assert.deepEqual(problems(nested), ['oidc.clients.0.redirect_uri: unknown key']);
  });

  test('bad types name the path and what was expected', () => {
    const [problem] = problems(`${minimal}http:\n  port: eighty\n`);
    assert.match(problem!, /^http\.port: .*expected number/);
    assert.match(problems(`${minimal}http:\n  public_url: not a url\n`)[0]!, /^http\.public_url: expected an http\(s\) URL/);
    assert.deepEqual(problems(`${minimal}http:\n  public_url: https://sso.example.org/oidc\n`), ['http.public_url: expected an origin without a path, e.g. https://sso.example.org']);
    assert.deepEqual(problems(`${minimal}wiki:\n  client_id: abc\n  client_secret: def\n`), [
      'wiki.contact: required with client_id: the Wikimedia User-Agent policy asks for a contact (an email address or a wiki user page)',
    ]);
    assert.match(problems(`${minimal}logging:\n  level: loud\n`)[0]!, /^logging\.level: .*"info"/);
  });

  test('a secret must come inline or from a file, exactly one of the two', () => {
    assert.deepEqual(problems(`matrix:\n  server_name: x\noidc:\n  cookie_keys: [${KEY}]\n`), ['oidc.key_encryption_secret: required: give key_encryption_secret or key_encryption_secret_file']);
    assert.deepEqual(problems(`oidc:\n  cookie_keys: [${KEY}]\n  key_encryption_secret: s\n`), ['matrix: required (expected object)']);
    assert.deepEqual(problems(`${minimal}  key_encryption_secret_file: /x\n`), [
      'oidc.key_encryption_secret: give either key_encryption_secret or key_encryption_secret_file, not both',
    ]);
    const client = `${minimal}  clients:\n    - client_id: hs\n      redirect_uris: [https://hs.example/cb]\n`;
    assert.deepEqual(problems(client), ['oidc.clients.0.client_secret: required: give client_secret or client_secret_file']);
  });

  test('secret files resolve into their plain fields', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wms-config-'));
    writeFileSync(join(dir, 'secret'), 'from-a-file\n');
    writeFileSync(join(dir, 'cookies'), `${KEY}\n${'o'.repeat(40)}\n\n`);
    const config = parseConfig(`matrix:\n  server_name: x\noidc:\n  cookie_keys_file: ${dir}/cookies\n  key_encryption_secret_file: ${dir}/secret\n`, 'test.yaml');
    assert.equal(config.oidc.key_encryption_secret, 'from-a-file');
    assert.deepEqual(config.oidc.cookie_keys, [KEY, 'o'.repeat(40)]);
    assert.equal('key_encryption_secret_file' in config.oidc, false);
    assert.deepEqual(problems(`${minimal}wiki:\n  client_secret_file: ${dir}/nope\n`), [`wiki.client_secret_file: cannot read ${dir}/nope (file not found)`]);
  });

  test('DATABASE_URL is used when the file names no database', () => {
    assert.equal(parseConfig(minimal, 'test.yaml', { DATABASE_URL: 'postgres://db/x' }).database.url, 'postgres://db/x');
    const explicit = `${minimal}database:\n  url: postgres://file/y\n`;
    assert.equal(parseConfig(explicit, 'test.yaml', { DATABASE_URL: 'postgres://db/x' }).database.url, 'postgres://file/y');
  });

  test('YAML syntax errors and duplicate keys are reported, not thrown raw', () => {
    assert.match(problems('http:\n  port: [1\n')[0]!, /^YAML: line 3, column 1: Flow sequence .* end with a \]$/);
    assert.match(problems(`${minimal}http: {}\nhttp: {}\n`)[0]!, /^YAML: line 7, column 1: Map keys must be unique \(in "http: \{\}"\)$/);
    assert.deepEqual(problems('oidc:\n  cookie_keys: x: y\n'), ['YAML: line 2, column 16: Nested mappings are not allowed in compact mappings (in "cookie_keys: x: y")']);
  });

  test('a bot password needs its name, User@botname, and is a secret', () => {
    assert.deepEqual(problems(`${minimal}wiki:\n  api_user: Mirror@sso\n`), ['wiki.api_password: required with api_user: give api_password or api_password_file']);
    assert.deepEqual(problems(`${minimal}wiki:\n  api_password: p\n`), ['wiki.api_user: required with api_password: the bot password name, User@botname']);
    assert.deepEqual(problems(`${minimal}wiki:\n  api_user: Mirror\n  api_password: p\n`), ['wiki.api_user: expected a bot password name, User@botname (Special:BotPasswords)']);
    const dir = mkdtempSync(join(tmpdir(), 'wms-config-'));
    writeFileSync(join(dir, 'bot'), 'bot-password-from-a-file\n');
    const config = parseConfig(`${minimal}wiki:\n  api_user: Mirror bot@sso\n  api_password_file: ${dir}/bot\n`, 'test.yaml');
    assert.equal(config.wiki.api_password, 'bot-password-from-a-file');
    assert.equal(JSON.stringify(redact(config)).includes('bot-password-from-a-file'), false);
  });

  test('redaction hides every secret and nothing else', () => {
    const config = parseConfig(`${minimal}database:\n  url: postgres://u:pw@h/db\n`, 'test.yaml');
    const shown = JSON.stringify(redact(config));
    for (const secret of [KEY, 's3cret', 'pw@h']) assert.equal(shown.includes(secret), false, `${secret} leaked`);
    assert.match(shown, /"port":8080/);
  });

  test('the generated sample is valid, complete and has fresh secrets', () => {
    const a = renderSample();
    const b = renderSample();
    assert.notEqual(a, b);
    const config = parseConfig(a, 'sample.yaml');
    assert.equal(config.oidc.cookie_keys.length, 1);
    for (const section of ['http', 'database', 'oidc', 'wiki', 'matrix', 'sync', 'admin', 'logging']) {
      assert.match(a, new RegExp(`^${section}:`, 'm'), `sample lacks ${section}`);
    }
  });

  test('config/config.schema.json and the README reference are in sync with the schema (run `npm run docs`)', () => {
    assert.deepEqual(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')), configJsonSchema());
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(readme, withReference(readme));
  });
});
