#!/usr/bin/env node
// The one executable: `wiki-matrix-sso <command>`. Commands print their results to stdout; the
// long-running ones (serve, worker) log JSON through pino instead.
import cluster from 'node:cluster';
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import YAML from 'yaml';
import { startCluster, startService, stopMessage } from './commands/serve.ts';
import { openMigratedDatabase, shutdownSignal } from './commands/common.ts';
import { configJsonSchema, renderSample } from './config/generate.ts';
import { ConfigError, configPath, loadConfigFile, redact, type Config, type Environment } from './config/load.ts';
import { createLogger, type Logger } from './log.ts';
import { SigningKeyStore } from './oidc/keys.ts';
// The worker, sync, whois and forget commands load matrix-js-sdk, the moderation code or a progress
// bar: imported when they run, so that `serve` and `npm start` do not wait for modules they never use.

const env: Environment = { WMS_CONFIG: process.env.WMS_CONFIG, DATABASE_URL: process.env.DATABASE_URL, WMS_PGLITE_TEMPLATE_DIR: process.env.WMS_PGLITE_TEMPLATE_DIR };
/** Where a new embedded database is copied from (db/pglite-template.ts); undefined: the default. */
const templateDir: string | false | undefined = env.WMS_PGLITE_TEMPLATE_DIR === 'none' ? false : env.WMS_PGLITE_TEMPLATE_DIR || undefined;
const openOptions = templateDir === undefined ? {} : { templateDir };

class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  options?: ParseArgsConfig['options'];
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const configOption = { config: { type: 'string', short: 'c' } } as const;
const CONFIG_HELP = '  -c, --config PATH   configuration file (default: $WMS_CONFIG or ./wiki-matrix-sso.yaml)';

function load(values: Record<string, unknown>): Config {
  return loadConfigFile(configPath(values.config as string | undefined, env), env);
}

async function withSigningKeys(config: Config, fn: (keys: SigningKeyStore) => Promise<void>): Promise<void> {
  const db = await openMigratedDatabase(config, createLogger('warn'), openOptions);
  try {
    const keys = new SigningKeyStore(db, { secret: config.oidc.key_encryption_secret });
    await keys.ensure();
    await fn(keys);
  } finally {
    await db.close();
  }
}

function loggerFor(config: Config): Logger {
  return createLogger(config.logging.level);
}

const commands: Record<string, Command> = {
  serve: {
    summary: 'Run the OpenID Connect provider and web pages.',
    usage: `wiki-matrix-sso serve [--workers N] [--config PATH]\n\n  -w, --workers N     run N processes sharing the port (node:cluster; PostgreSQL only), default 1\n${CONFIG_HELP}`,
    options: { ...configOption, workers: { type: 'string', short: 'w' } },
    async run(values) {
      const workers = Number(values.workers ?? 1);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError(`--workers takes a whole number from 1 to 64, not "${values.workers}"`);
      const config = load(values);
      if (workers > 1 && !config.database.url) throw new UsageError('--workers needs PostgreSQL (database.url): the embedded database can be opened by one process only');
      let log = loggerFor(config);
      if (cluster.isWorker) {
        // One of `serve --workers N`: the primary logged the configuration and stops it by message.
        log = log.child({ worker: cluster.worker!.id });
        const stopRequested = Promise.race([shutdownSignal(log), stopMessage()]);
        const service = await startService(config, log, { clusterWorker: true, ...openOptions });
        await stopRequested;
        await service.stop();
        cluster.worker!.disconnect();
        return 0;
      }
      log.info({ config: redact(config) }, 'effective configuration');
      // Listening for signals before starting: a stop asked for during start-up waits for it, then stops.
      const stopRequested = shutdownSignal(log);
      const service = workers > 1 ? await startCluster(config, log, workers) : await startService(config, log, openOptions);
      await stopRequested;
      await service.stop();
      return 0;
    },
  },
  dev: {
    summary: 'Serve on the embedded database, writing a development configuration first if there is none.',
    usage: `wiki-matrix-sso dev [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values) {
      const path = configPath(values.config as string | undefined, env);
      if (!existsSync(path)) {
        writeFileSync(path, renderSample(), { mode: 0o600 });
        process.stdout.write(`Wrote a development configuration with fresh secrets to ${path}\n`);
      }
      const config = loadConfigFile(path, env);
      const log = loggerFor(config);
      const stopRequested = shutdownSignal(log);
      // Step by step, so that a first start (which creates the embedded database) is not silent;
      // times count from the start of the process.
      const elapsed = () => `${(performance.now() / 1000).toFixed(1)} s`;
      const progress = (step: string) => process.stdout.write(`[${elapsed()}] ${step}…\n`);
      const service = await startService(config, log, { progress, ...openOptions });
      process.stdout.write(
        [
          '',
          `wiki-matrix-sso is running on ${config.database.url ? 'PostgreSQL' : `the embedded database (${config.database.data_dir})`}, ready in ${elapsed()}.`,
          `  OpenID Connect issuer: ${config.http.public_url}`,
          `  listening on:          ${service.url}  (health: ${service.url}/health, readiness: ${service.url}/ready)`,
          '',
          'Next:',
          `  1. Register an OAuth 2 consumer on your wiki and put its key and secret under \`wiki\` in ${path}.`,
          `  2. Add your homeserver under \`oidc.clients\` and paste the Synapse snippet from the README.`,
          '  Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      await stopRequested;
      await service.stop();
      return 0;
    },
  },
  worker: {
    summary: 'Run the moderation worker (one leader at a time; others wait as standbys).',
    usage: `wiki-matrix-sso worker [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values) {
      const config = load(values);
      const log = loggerFor(config);
      const stopRequested = shutdownSignal(log);
      const { startWorker } = await import('./commands/worker.ts');
      const worker = await startWorker(config, log);
      await stopRequested;
      await worker.stop();
      return 0;
    },
  },
  migrate: {
    summary: 'Apply pending database migrations and exit.',
    usage: `wiki-matrix-sso migrate [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values) {
      const config = load(values);
      const db = await openMigratedDatabase(config, createLogger('warn'), openOptions);
      await db.close();
      process.stdout.write(`${db.description}: migrations are up to date\n`);
      return 0;
    },
  },
  sync: {
    summary: 'Run one full moderation pass now; with --dry-run, print its plan and change nothing.',
    usage: `wiki-matrix-sso sync [--dry-run] [--config PATH]\n\n  --dry-run           print what the pass would do; nothing is changed or recorded\n${CONFIG_HELP}\n\nThe plan or the outcome goes to stdout; progress goes to stderr (a bar on a terminal, plain lines otherwise).`,
    options: { ...configOption, 'dry-run': { type: 'boolean' } },
    async run(values) {
      const config = load(values);
      const [{ runSync }, { progressOn }] = await Promise.all([import('./commands/sync.ts'), import('./commands/progress.ts')]);
      return runSync({ config, log: createLogger('warn'), dryRun: Boolean(values['dry-run']), progress: progressOn({ command: 'sync' }) });
    },
  },
  whois: {
    summary: 'Show the account behind a wiki username, a Matrix ID or localpart, or a central user id.',
    usage: `wiki-matrix-sso whois <username | @localpart:server | localpart | central id> [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values, positionals) {
      const query = positionals.join(' ').trim();
      if (!query) throw new UsageError('say whom to look up');
      const config = load(values);
      const { lookUp } = await import('./commands/whois.ts');
      const account = await lookUp(config, createLogger('warn'), query);
      if (!account) {
        process.stdout.write(`no account matches "${query}"\n`);
        return 1;
      }
      process.stdout.write(YAML.stringify(account));
      return 0;
    },
  },
  forget: {
    summary: "Remove a person's personal data; without --yes, only show what would go.",
    usage: [
      'wiki-matrix-sso forget <username | @localpart:server | localpart | central id> [--yes] [--by NAME] [--config PATH]',
      '',
      '  --yes               do it (it cannot be undone); without it, nothing is changed',
      '  --by NAME           who is doing it, kept in the audit (default: your user name)',
      CONFIG_HELP,
      '',
      'Erases the account, its cached wiki profile, sign-ins, sessions and tokens; keeps the audit',
      "entries under an opaque id with names removed. Bans and suspensions in force stay in Matrix",
      "(handed over to the rooms' moderators); power levels and gated-room memberships are taken",
      'back at the next full moderation pass. While serve holds the embedded database, the command',
      'asks it through the admin API (admin.token).',
    ].join('\n'),
    options: { ...configOption, yes: { type: 'boolean' }, by: { type: 'string' } },
    async run(values, positionals) {
      const who = positionals.join(' ').trim();
      if (!who) throw new UsageError('say whom to forget');
      const config = load(values);
      const { runForget } = await import('./commands/forget.ts');
      return runForget({ config, log: createLogger('warn'), who, yes: Boolean(values.yes), by: values.by as string | undefined });
    },
  },
  'keys list': {
    summary: 'List the signing keys: which sign, and until when retired ones stay published.',
    usage: `wiki-matrix-sso keys list [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values) {
      await withSigningKeys(load(values), async (keys) => {
        for (const key of await keys.list()) {
          const state = key.retireAfter ? `retired, published until ${key.retireAfter.toISOString()}` : 'signing';
          process.stdout.write(`${key.kid}  ${key.alg}  created ${key.createdAt.toISOString()}  ${state}\n`);
        }
      });
      return 0;
    },
  },
  'keys rotate': {
    summary: 'Add new signing keys; old ones stay published until every token they signed has expired.',
    usage: `wiki-matrix-sso keys rotate [--config PATH]\n\n${CONFIG_HELP}\n\nRunning serve processes load keys at start: restart them after rotating.`,
    options: configOption,
    async run(values) {
      const config = load(values);
      await withSigningKeys(config, async (keys) => {
        const { added, retired, pruned } = await keys.rotate({ maxTokenLifetimeSeconds: Math.max(config.oidc.ttl.id_token, config.oidc.ttl.access_token) });
        process.stdout.write(
          [`added:   ${added.join(', ') || '-'}`, `retired: ${retired.join(', ') || '-'}`, `pruned:  ${pruned.join(', ') || '-'}`, 'Restart the serve processes so that they sign with the new keys.', ''].join('\n'),
        );
      });
      return 0;
    },
  },
  'config check': {
    summary: 'Validate a configuration file without starting anything.',
    usage: `wiki-matrix-sso config check [--config PATH | PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values, positionals) {
      const path = configPath((positionals[0] ?? values.config) as string | undefined, env);
      loadConfigFile(path, env);
      process.stdout.write(`${path}: configuration is valid\n`);
      return 0;
    },
  },
  'config show': {
    summary: 'Print the effective configuration (defaults filled in, secrets redacted).',
    usage: `wiki-matrix-sso config show [--config PATH]\n\n${CONFIG_HELP}`,
    options: configOption,
    async run(values) {
      const { source: _source, ...config } = load(values);
      process.stdout.write(YAML.stringify(redact(config)));
      return 0;
    },
  },
  'config generate': {
    summary: 'Write a complete, commented sample configuration with freshly generated secrets.',
    usage: 'wiki-matrix-sso config generate [--output PATH] [--force]\n\n  -o, --output PATH   write to PATH (mode 0600) instead of stdout\n  -f, --force         overwrite an existing file',
    options: { output: { type: 'string', short: 'o' }, force: { type: 'boolean', short: 'f' } },
    async run(values) {
      const sample = renderSample();
      const output = values.output as string | undefined;
      if (!output) {
        process.stdout.write(sample);
        return 0;
      }
      if (existsSync(output) && !values.force) throw new UsageError(`${output} already exists (use --force to overwrite)`);
      writeFileSync(output, sample, { mode: 0o600 });
      process.stdout.write(`wrote ${output}\n`);
      return 0;
    },
  },
  'config schema': {
    summary: 'Print the JSON Schema of the configuration (for editors and validators).',
    usage: 'wiki-matrix-sso config schema',
    async run() {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return 0;
    },
  },
};

function overview(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  return [
    'wiki-matrix-sso: sign in to Matrix with a Wikimedia account, and mirror wiki moderation into Matrix.',
    '',
    'Usage: wiki-matrix-sso <command> [options]   (every command takes --help)',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const grouped = (argv[0] === 'config' || argv[0] === 'keys') && argv[1] && !argv[1].startsWith('-');
  const name = grouped ? `${argv[0]} ${argv[1]}` : argv[0];
  const rest = argv.slice(name?.includes(' ') ? 2 : 1);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`wiki-matrix-sso: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${overview()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: name === 'config check' || name === 'whois' || name === 'forget',
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n`);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    const message = (error as Error).message ?? String(error);
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`wiki-matrix-sso ${name}: ${message}\nUsage: ${command.usage}\n`);
      return 2;
    }
    process.stderr.write(`wiki-matrix-sso ${name}: ${message}\n`);
    if (process.env.WMS_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`wiki-matrix-sso: ${(error as Error).message}\n`);
    process.exitCode = 1;
  },
);
