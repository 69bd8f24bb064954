// A real Synapse homeserver for the e2e tier: installed by scripts/setup-synapse.sh into a cached
// venv, started on loopback with a fresh SQLite database per call, stopped (with every process
// it started) by stop(), by the test process exiting, or by the test process dying.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { freePort } from './ports.ts';

export type ConfigObject = Record<string, unknown>;

/** What the caller knows about the server before it starts, to build config that names it. */
export interface SynapseAddress {
  baseUrl: string;
  serverName: string;
  port: number;
}

export interface SynapseOptions {
  /** Matrix server name; default `localhost`. */
  serverName?: string;
  /**
   * Extra homeserver.yaml merged over the generated config (objects merge, anything else
   * replaces), e.g. `{ oidc_providers: [...] }`. A YAML string, an object, or a function of the
   * server's address (for `public_baseurl`, redirect URIs, …).
   */
  config?: string | ConfigObject | ((address: SynapseAddress) => string | ConfigObject);
  /**
   * PEM file of CA certificates that Synapse's outbound HTTPS client (OIDC discovery, token,
   * userinfo, JWKS) trusts *instead of* the system roots, through OpenSSL's SSL_CERT_FILE.
   */
  trustedCaFile?: string;
  /** How long to wait for /health; default 60 s. */
  startTimeoutMs?: number;
  /**
   * Application services to register (an IRC bridge, say): each is written to a registration
   * file in the server's folder and listed in `app_service_config_files`. Synapse pushes their
   * transactions to `url`, so whatever answers there must be listening before Synapse starts.
   */
  appservices?: AppserviceRegistration[];
}

/** An application service registration file, as Synapse reads it (the Matrix appservice spec's fields). */
export interface AppserviceRegistration {
  id: string;
  /** Where the homeserver pushes transactions (`PUT /_matrix/app/v1/transactions/{txnId}`). */
  url: string;
  /** What the appservice presents to the homeserver. */
  as_token: string;
  /** What the homeserver presents to the appservice. */
  hs_token: string;
  /** The appservice's own bot: `@<sender_localpart>:<server name>`. */
  sender_localpart: string;
  namespaces: { users?: Namespace[]; aliases?: Namespace[]; rooms?: Namespace[] };
  /** Default false: bridges are usually exempt from rate limits. */
  rate_limited?: boolean;
}

export interface Namespace {
  exclusive: boolean;
  regex: string;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
}

export interface Synapse extends SynapseAddress {
  /** The running Synapse's version, e.g. `1.163.2`. */
  version: string;
  /** An access token of `@admin:<serverName>`, a server admin made at start. */
  adminToken: string;
  adminUserId: string;
  /** The `registration_shared_secret`, for tests of tools that register users with it. */
  registrationSecret: string;
  /** Synapse's stdout and stderr (its whole log). */
  logPath: string;
  /** The folder holding the config, database and media store. */
  dir: string;
  /** The effective homeserver.yaml, as written. */
  config: ConfigObject;
  registerUser(localpart: string, password: string, options?: { admin?: boolean }): Promise<RegisteredUser>;
  /** Logs in with a password; returns the access token. */
  login(localpart: string, password: string): Promise<string>;
  /**
   * Stops Synapse (SIGTERM, then SIGKILL after 10 s) and deletes its folder, unless `keepFiles`
   * or the environment variable WMS_KEEP_SYNAPSE=1 asks to keep it for a post-mortem. Safe to
   * call twice.
   */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
  /** Stops the server (SIGTERM, or SIGKILL with `kill`), keeping its files: an outage. */
  pause(options?: { kill?: boolean }): Promise<void>;
  /** Starts the paused server again on the same port, with the same config and database. */
  resume(): Promise<void>;
}

export function synapseVenv(): string {
  const cache = process.env.WMS_CACHE_DIR || join(homedir(), '.cache', 'wiki-matrix-sso');
  return join(cache, 'synapse-venv');
}

/** Why Synapse cannot run on this machine, or undefined when it can. */
export function synapseAvailable(): string | undefined {
  const venv = synapseVenv();
  if (!existsSync(join(venv, 'bin', 'python'))) {
    return `no Synapse venv at ${venv}: run scripts/setup-synapse.sh`;
  }
  return installedSynapseVersion() ? undefined : `matrix-synapse is not installed in ${venv}: run scripts/setup-synapse.sh`;
}

/**
 * The version of Synapse in the venv (from its dist-info folder), known before any server
 * starts, so that test names can carry it; undefined when it is not installed.
 */
export function installedSynapseVersion(): string | undefined {
  const libs = join(synapseVenv(), 'lib');
  if (!existsSync(libs)) return undefined;
  for (const py of readdirSync(libs)) {
    const site = join(libs, py, 'site-packages');
    const info = existsSync(site) ? readdirSync(site).find((f) => f.startsWith('matrix_synapse-') && f.endsWith('.dist-info')) : undefined;
    if (info) return info.slice('matrix_synapse-'.length, -'.dist-info'.length);
  }
  return undefined;
}

const RELAXED = { per_second: 1000, burst_count: 1000 };

function baseConfig(dir: string, address: SynapseAddress, secrets: { registration: string }): ConfigObject {
  return {
    server_name: address.serverName,
    public_baseurl: `${address.baseUrl}/`,
    pid_file: join(dir, 'homeserver.pid'),
    signing_key_path: join(dir, 'signing.key'),
    media_store_path: join(dir, 'media'),
    database: { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } },
    listeners: [
      {
        port: address.port,
        bind_addresses: ['127.0.0.1'],
        type: 'http',
        tls: false,
        x_forwarded: false,
        // No federation resource: this server talks to nobody but the test.
        resources: [{ names: ['client'], compress: false }],
      },
    ],
    report_stats: false,
    enable_metrics: false,
    enable_registration: false,
    // The default 12 rounds cost ~0.5 s per password; tests make many users.
    bcrypt_rounds: 4,
    registration_shared_secret: secrets.registration,
    macaroon_secret_key: randomBytes(32).toString('hex'),
    form_secret: randomBytes(32).toString('hex'),
    trusted_key_servers: [],
    suppress_key_server_warning: true,
    federation_domain_whitelist: [],
    url_preview_enabled: false,
    presence: { enabled: false },
    rc_message: RELAXED,
    rc_registration: RELAXED,
    rc_login: { address: RELAXED, account: RELAXED, failed_attempts: RELAXED },
    rc_admin_redaction: RELAXED,
    rc_joins: { local: RELAXED, remote: RELAXED },
    rc_joins_per_room: RELAXED,
    rc_invites: { per_room: RELAXED, per_user: RELAXED, per_issuer: RELAXED },
    rc_3pid_validation: RELAXED,
    rc_room_creation: RELAXED,
    rc_presence: { per_user: RELAXED },
    rc_profile: RELAXED,
    rc_reports: RELAXED,
    rc_delayed_event_mgmt: RELAXED,
    rc_media_create: RELAXED,
    rc_user_directory: RELAXED,
    rc_third_party_invite: RELAXED,
  };
}

function isObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function mergeConfig(base: ConfigObject, extra: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

function extraConfig(option: SynapseOptions['config'], address: SynapseAddress): ConfigObject {
  const raw = typeof option === 'function' ? option(address) : option;
  if (raw === undefined) return {};
  const parsed: unknown = typeof raw === 'string' ? YAML.parse(raw) : raw;
  if (parsed == null) return {};
  if (!isObject(parsed)) throw new Error('startSynapse: extra config must be a YAML mapping');
  return parsed;
}

/** Synapse's signing key file format: `ed25519 <key id> <unpadded base64 of the 32-byte seed>`. */
function signingKey(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  return `ed25519 a_${randomBytes(3).toString('hex')} ${seed.toString('base64').replace(/=+$/, '')}\n`;
}


// Python sets PR_SET_PDEATHSIG and then execs Synapse in the same process, so that Synapse gets
// SIGTERM when the test process dies without running any cleanup (SIGKILL, a crash).
const LAUNCHER = `
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() == 1:
    sys.exit("parent gone before Synapse started")
os.execv(sys.executable, [sys.executable, "-m", "synapse.app.homeserver", *sys.argv[1:]])
`;

function childEnv(trustedCaFile: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  // The OIDC client honours proxy variables; a proxy would never reach our loopback provider.
  for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete env[name];
  delete env.SSL_CERT_FILE;
  delete env.SSL_CERT_DIR;
  if (trustedCaFile) env.SSL_CERT_FILE = trustedCaFile;
  return env;
}

async function tail(path: string, lines = 40): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

async function waitForHealth(baseUrl: string, child: ChildProcess, logPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Synapse exited (${child.exitCode ?? child.signalCode}) before it was ready; log tail:\n${await tail(logPath)}`);
    }
    const ok = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`Synapse did not answer ${baseUrl}/health within ${timeoutMs} ms; log tail:\n${await tail(logPath)}`);
}

async function matrixJson(url: string, init: RequestInit & { token?: string } = {}): Promise<any> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body) headers.set('content-type', 'application/json');
  const response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${new URL(url).pathname} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

/** Ends the process: SIGTERM (or SIGKILL), then SIGKILL after 10 s. */
async function end(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(hard);
}

function stopper(current: () => ChildProcess, dir: string): Synapse['stop'] {
  const killNow = () => current().kill('SIGKILL');
  process.once('exit', killNow);
  let stopping: Promise<void> | undefined;
  return (options = {}) => {
    const keep = options.keepFiles || process.env.WMS_KEEP_SYNAPSE === '1';
    stopping ??= (async () => {
      await end(current());
      process.removeListener('exit', killNow);
      if (!keep) await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
}

export async function startSynapse(options: SynapseOptions = {}): Promise<Synapse> {
  const why = synapseAvailable();
  if (why) throw new Error(why);
  const serverName = options.serverName ?? 'localhost';
  const port = await freePort();
  const address: SynapseAddress = { baseUrl: `http://127.0.0.1:${port}`, serverName, port };
  const dir = await mkdtemp(join(tmpdir(), 'wms-synapse-'));
  const secret = randomBytes(24).toString('hex');
  const config = mergeConfig(baseConfig(dir, address, { registration: secret }), extraConfig(options.config, address));
  if (options.appservices?.length) {
    const files: string[] = [];
    for (const registration of options.appservices) {
      const file = join(dir, `appservice-${registration.id}.yaml`);
      await writeFile(file, YAML.stringify({ rate_limited: false, ...registration }), { mode: 0o600 });
      files.push(file);
    }
    config.app_service_config_files = [...((config.app_service_config_files as string[] | undefined) ?? []), ...files];
  }
  const configPath = join(dir, 'homeserver.yaml');
  await writeFile(configPath, YAML.stringify(config));
  await writeFile(join(dir, 'signing.key'), signingKey(), { mode: 0o600 });

  const logPath = join(dir, 'homeserver.log');
  const launch = (): ChildProcess => {
    const log = openSync(logPath, 'a');
    const python = join(synapseVenv(), 'bin', 'python');
    const spawned = spawn(python, ['-c', LAUNCHER, '--config-path', configPath], {
      cwd: dir,
      env: childEnv(options.trustedCaFile),
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    return spawned;
  };
  let child = launch();
  const stop = stopper(() => child, dir);
  const pause: Synapse['pause'] = (opts = {}) => end(child, opts.kill ? 'SIGKILL' : 'SIGTERM');
  const resume: Synapse['resume'] = async () => {
    if (child.exitCode === null && child.signalCode === null) throw new Error('resume: Synapse is running; pause it first');
    child = launch();
    await waitForHealth(address.baseUrl, child, logPath, options.startTimeoutMs ?? 60_000);
  };

  try {
    await waitForHealth(address.baseUrl, child, logPath, options.startTimeoutMs ?? 60_000);
    const api = (path: string) => `${address.baseUrl}${path}`;
    const registerUser = async (localpart: string, password: string, opts: { admin?: boolean } = {}) => {
      const admin = opts.admin ?? false;
      const { nonce } = await matrixJson(api('/_synapse/admin/v1/register'));
      const mac = createHmac('sha1', secret)
        .update([nonce, localpart, password, admin ? 'admin' : 'notadmin'].join('\0'))
        .digest('hex');
      const body = JSON.stringify({ nonce, username: localpart, password, admin, mac });
      const result = await matrixJson(api('/_synapse/admin/v1/register'), { method: 'POST', body });
      return { userId: result.user_id as string, accessToken: result.access_token as string };
    };
    const login = async (localpart: string, password: string) => {
      const body = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password });
      const result = await matrixJson(api('/_matrix/client/v3/login'), { method: 'POST', body });
      return result.access_token as string;
    };
    const admin = await registerUser('admin', randomBytes(12).toString('hex'), { admin: true });
    const { server_version: version } = await matrixJson(api('/_synapse/admin/v1/server_version'), { token: admin.accessToken });
    return {
      ...address,
      version,
      adminToken: admin.accessToken,
      adminUserId: admin.userId,
      registrationSecret: secret,
      logPath,
      dir,
      config,
      registerUser,
      login,
      stop,
      pause,
      resume,
    };
  } catch (error) {
    // Keep the log: the error message quotes its tail, and the folder is gone after stop().
    await stop();
    throw error;
  }
}

/** Synapse's client-server API for test assertions: any 200 answer as JSON, anything else fails the test. */
export function clientApi(synapse: Pick<Synapse, 'baseUrl' | 'adminToken'>) {
  const enc = encodeURIComponent;
  /** A client-server API call (`/rooms/…`), or any other when the path is absolute (`/_synapse/admin/…`). */
  async function call(token: string, method: string, path: string, body?: unknown): Promise<any> {
    const response = await fetch(`${synapse.baseUrl}${path.startsWith('/_') ? '' : '/_matrix/client/v3'}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const json = await response.json();
    if (response.status !== 200) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }
  const admin = (method: string, path: string, body?: unknown) => call(synapse.adminToken, method, path, body);
  const state = (roomId: string, type: string, key = '') => admin('GET', `/rooms/${enc(roomId)}/state/${type}/${enc(key)}`);
  return { call, admin, state };
}
