// A real MediaWiki for integration tests: a fresh SQLite wiki in a temp dir, served by PHP's
// built-in server on a free loopback port, with an administrator session for arranging the
// wiki's state (accounts, blocks, group changes) through the Action API as a wiki admin would.
// The MediaWiki tree itself (scripts/setup-mediawiki.sh) is never written to: settings, database,
// cache and uploads all live in the temp dir, reached through MW_CONFIG_FILE.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, appendFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.ts';

const ADMIN_NAME = 'Admin';
const ADMIN_PASSWORD = 'admin-password-for-tests';
const REQUIRED_PHP_MODULES = ['pdo_sqlite', 'intl', 'mbstring', 'dom'];

export function mediawikiDir(): string {
  const cache = process.env.WMS_CACHE_DIR || join(homedir(), '.cache', 'wiki-matrix-sso');
  return process.env.WMS_MEDIAWIKI_DIR || join(cache, 'mediawiki', 'usr', 'share', 'mediawiki');
}

/** Why a real wiki cannot be started on this machine, or undefined when it can. */
export function mediawikiAvailable(): string | undefined {
  const dir = mediawikiDir();
  const hint = 'run scripts/setup-mediawiki.sh (or set WMS_MEDIAWIKI_DIR)';
  if (!existsSync(join(dir, 'api.php')) || !existsSync(join(dir, 'maintenance', 'install.php'))) {
    return `no MediaWiki at ${dir}: ${hint}`;
  }
  const php = spawnSync('php', ['-m'], { encoding: 'utf8', timeout: 10_000 });
  if (php.error || php.status !== 0) return `php is not runnable: ${hint}`;
  const loaded = new Set(php.stdout.toLowerCase().split('\n').map((line) => line.trim()));
  const missing = REQUIRED_PHP_MODULES.filter((m) => !loaded.has(m));
  if (missing.length > 0) return `PHP lacks ${missing.join(', ')}: ${hint}`;
  return undefined;
}

export interface BlockOptions {
  reason?: string;
  /** A MediaWiki expiry: `infinite`, `1 day`, an ISO timestamp… Default `infinite`. */
  expiry?: string;
  /** A partial block: only `pages` are blocked (the user may still edit their talk page). */
  partial?: boolean;
  pages?: string[];
  /** Replace an existing block (the block id is kept). */
  reblock?: boolean;
}

export interface TestWiki {
  /** The wiki's api.php. */
  apiUrl: string;
  /** The script path (the directory holding api.php and rest.php). */
  baseUrl: string;
  adminName: string;
  createUser(name: string, password: string, options?: { sysop?: boolean }): Promise<{ userId: number }>;
  block(user: string, options?: BlockOptions): Promise<{ id: number }>;
  unblock(user: string): Promise<void>;
  userrights(user: string, change: { add?: string[]; remove?: string[] }): Promise<void>;
  /** Renames an account, as Special:RenameUser does (the Renameuser extension's maintenance script). */
  renameUser(from: string, to: string): Promise<void>;
  /** A bot password for an existing account, as Special:BotPasswords makes one (`User@appId`). */
  createBotPassword(user: string, options: { appId: string; grants: string[] }): Promise<{ username: string; password: string }>;
  /** A raw admin request, for arranging anything the helpers above do not cover. */
  adminRequest(params: Record<string, string>, options?: { token?: 'csrf' | 'userrights' }): Promise<any>;
  stop(): Promise<void>;
}

export interface WikiOptions {
  log?: (line: string) => void;
  /** PHP appended to LocalSettings.php, e.g. `$wgGroupPermissions['*']['read'] = false;` for a private wiki. */
  settings?: string;
}

export async function startWiki(options: WikiOptions = {}): Promise<TestWiki> {
  const why = mediawikiAvailable();
  if (why) throw new Error(why);
  const docroot = mediawikiDir();
  const dir = mkdtempSync(join(tmpdir(), 'wms-wiki-'));
  let server: ChildProcess | undefined;
  try {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const settings = install(docroot, dir, baseUrl);
    if (options.settings) appendFileSync(settings, `\n${options.settings}\n`);
    server = serve(docroot, settings, port, options.log);
    const apiUrl = `${baseUrl}/api.php`;
    await waitForApi(apiUrl, server);
    const admin = new ApiSession(apiUrl);
    await admin.login(ADMIN_NAME, ADMIN_PASSWORD);
    return wikiHandle({ apiUrl, baseUrl, admin, server, dir });
  } catch (err) {
    await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function wikiHandle(parts: { apiUrl: string; baseUrl: string; admin: ApiSession; server: ChildProcess; dir: string }): TestWiki {
  const { admin } = parts;
  const wiki: TestWiki = {
    apiUrl: parts.apiUrl,
    baseUrl: parts.baseUrl,
    adminName: ADMIN_NAME,
    adminRequest: (params, opts) => admin.post(params, opts?.token),

    async createUser(name, password, opts = {}) {
      const loginToken = await admin.token('createaccount');
      const answer = await admin.post({
        action: 'createaccount',
        username: name,
        password,
        retype: password,
        createreturnurl: parts.baseUrl,
        createtoken: loginToken,
      });
      const result = answer.createaccount;
      if (result?.status !== 'PASS') {
        throw new Error(`createaccount ${name}: ${result?.status} ${result?.messagecode ?? ''} ${result?.message ?? ''}`);
      }
      if (opts.sysop) await wiki.userrights(name, { add: ['sysop'] });
      const users = await admin.post({ action: 'query', list: 'users', ususers: name });
      return { userId: users.query.users[0].userid as number };
    },

    async block(user, opts = {}) {
      const params: Record<string, string> = {
        action: 'block',
        user,
        expiry: opts.expiry ?? 'infinite',
        reason: opts.reason ?? '',
      };
      if (opts.reblock) params.reblock = '1';
      if (opts.partial) {
        params.partial = '1';
        // Partial blocks must leave the user talk page editable (ipb-prevent-user-talk-edit).
        params.allowusertalk = '1';
        if (opts.pages?.length) params.pagerestrictions = opts.pages.join('|');
      }
      const answer = await admin.post(params, 'csrf');
      return { id: answer.block.id as number };
    },

    async unblock(user) {
      await admin.post({ action: 'unblock', user, reason: 'test' }, 'csrf');
    },

    async renameUser(from, to) {
      maintenance(parts.dir, 'extensions-core/Renameuser/maintenance/renameUser.php', ['--oldname', from, '--newname', to, '--performer', ADMIN_NAME, '--reason', 'test rename']);
    },

    async createBotPassword(user, { appId, grants }) {
      const password = randomBytes(16).toString('hex');
      maintenance(parts.dir, 'maintenance/createBotPassword.php', ['--appid', appId, '--grants', grants.join(','), user, password]);
      return { username: `${user}@${appId}`, password };
    },

    async userrights(user, change) {
      const add = change.add ?? [];
      const remove = change.remove ?? [];
      const answer = await admin.post(
        { action: 'userrights', user, add: add.join('|'), remove: remove.join('|'), reason: 'test' },
        'userrights',
      );
      // Without the right the API still answers 200, with nothing added or removed.
      const added: string[] = (answer.userrights?.added ?? []).map((g: any) => (typeof g === 'string' ? g : g.group));
      const removed: string[] = answer.userrights?.removed ?? [];
      const notAdded = add.filter((g) => !added.includes(g));
      const notRemoved = remove.filter((g) => !removed.includes(g));
      if (notAdded.length > 0 || notRemoved.length > 0) {
        throw new Error(`userrights ${user}: not added [${notAdded}], not removed [${notRemoved}]: ${JSON.stringify(answer)}`);
      }
    },

    async stop() {
      await stopServer(parts.server);
      rmSync(parts.dir, { recursive: true, force: true });
    },
  };
  return wiki;
}

/** Runs a maintenance script against the wiki in `dir`, throwing its output when it fails. */
function maintenance(dir: string, script: string, args: string[]): void {
  const docroot = mediawikiDir();
  const result = spawnSync('php', [script, ...args], {
    cwd: docroot,
    env: { ...process.env, MW_CONFIG_FILE: join(dir, 'LocalSettings.php'), MW_INSTALL_PATH: docroot },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (${result.status ?? result.error}):\n${result.stdout}\n${result.stderr}`);
}

function install(docroot: string, dir: string, baseUrl: string): string {
  const data = join(dir, 'data');
  for (const sub of ['data', 'cache', 'images']) mkdirSync(join(dir, sub));
  const settings = join(dir, 'LocalSettings.php');
  const result = spawnSync(
    'php',
    [
      'maintenance/install.php',
      '--dbtype', 'sqlite',
      '--dbpath', data,
      '--dbname', 'testwiki',
      '--server', baseUrl,
      '--scriptpath', '',
      '--confpath', dir,
      '--pass', ADMIN_PASSWORD,
      '--skins', 'Vector',
      'TestWiki', ADMIN_NAME,
    ],
    { cwd: docroot, env: { ...process.env, MW_CONFIG_FILE: settings }, encoding: 'utf8', timeout: 60_000 },
  );
  if (result.status !== 0) {
    throw new Error(`MediaWiki install.php failed (${result.status ?? result.error}):\n${result.stdout}\n${result.stderr}`);
  }
  appendFileSync(settings, testSettings(dir));
  return settings;
}

function testSettings(dir: string): string {
  return `
# --- wiki-matrix-sso test harness ---
$wgCacheDirectory = ${phpString(join(dir, 'cache'))};
$wgUploadDirectory = ${phpString(join(dir, 'images'))};
$wgShowExceptionDetails = true;
# Tests create accounts and act quickly; throttles would make them flaky.
$wgRateLimits = [];
$wgAccountCreationThrottle = [];
$wgPasswordAttemptThrottle = [];
# Bot passwords and OAuth grants: no built-in grant includes userrights, nor (in 1.39) hideuser.
$wgGrantPermissions['editusergroups']['userrights'] = true;
$wgGrantPermissions['oversight']['hideuser'] = true;
# Jobs would otherwise run inside API requests and slow them down unpredictably.
$wgJobRunRate = 0;
# Debian bundles Renameuser (core only from 1.40); it writes renameuser log entries.
wfLoadExtension('Renameuser', "$IP/extensions-core/Renameuser/extension.json");
`;
}

function phpString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function serve(docroot: string, settings: string, port: number, log?: (line: string) => void): ChildProcess {
  // Its own process group, so that stopping it also ends the workers PHP forks.
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', docroot], {
    cwd: docroot,
    env: { ...process.env, MW_CONFIG_FILE: settings, PHP_CLI_SERVER_WORKERS: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const forward = (chunk: Buffer) => log?.(chunk.toString('utf8'));
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

async function waitForApi(apiUrl: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`php -S exited with ${server.exitCode}`);
    try {
      const res = await fetch(`${apiUrl}?action=query&meta=siteinfo&format=json&formatversion=2`, {
        signal: AbortSignal.timeout(2_000),
      });
      const body = res.ok ? ((await res.json()) as any) : undefined;
      // A private wiki answers anonymous readers with readapidenied: it is up all the same.
      if (body?.query?.general || body?.error?.code === 'readapidenied') return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`the wiki at ${apiUrl} did not answer within 15 s: ${String(last)}`);
}

async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timedOut = await Promise.race([exited.then(() => false), sleep(5_000).then(() => true)]);
  if (timedOut) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}


/** A logged-in API session: a cookie jar and tokens. Test-only, so errors are thrown raw. */
class ApiSession {
  readonly #apiUrl: string;
  readonly #cookies = new Map<string, string>();

  constructor(apiUrl: string) {
    this.#apiUrl = apiUrl;
  }

  async login(username: string, password: string): Promise<void> {
    const logintoken = await this.token('login');
    const answer = await this.post({ action: 'clientlogin', username, password, logintoken, loginreturnurl: this.#apiUrl });
    if (answer.clientlogin?.status !== 'PASS') {
      throw new Error(`login as ${username} failed: ${JSON.stringify(answer.clientlogin)}`);
    }
  }

  async token(type: 'login' | 'csrf' | 'userrights' | 'createaccount'): Promise<string> {
    const answer = await this.post({ action: 'query', meta: 'tokens', type });
    return answer.query.tokens[`${type}token`];
  }

  async post(params: Record<string, string>, token?: 'csrf' | 'userrights'): Promise<any> {
    const body = new URLSearchParams({ ...params, format: 'json', formatversion: '2' });
    if (token) body.set('token', await this.token(token));
    const res = await fetch(this.#apiUrl, {
      method: 'POST',
      body,
      headers: { cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      signal: AbortSignal.timeout(30_000),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const text = await res.text();
    let answer: any;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new Error(`${params.action}: HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
    }
    if (answer.error) throw new Error(`${params.action}: ${answer.error.code}: ${answer.error.info}`);
    return answer;
  }
}
