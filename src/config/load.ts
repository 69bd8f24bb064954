import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { configSchema, type ParsedConfig } from './schema.ts';

/** Names whose values are secrets wherever they appear; each may also come as `<name>_file`. */
export const SECRET_KEYS = ['url', 'cookie_keys', 'key_encryption_secret', 'client_secret', 'api_password', 'access_token', 'token'] as const;

type Client = ParsedConfig['oidc']['clients'][number];

/** The configuration after validation, with every `*_file` secret read into its plain field. */
export type Config = Omit<ParsedConfig, 'oidc'> & {
  oidc: Omit<ParsedConfig['oidc'], 'cookie_keys' | 'cookie_keys_file' | 'key_encryption_secret' | 'key_encryption_secret_file' | 'clients'> & {
    cookie_keys: string[];
    key_encryption_secret: string;
    clients: Array<Omit<Client, 'client_secret_file'>>;
  };
  /** Where the configuration was read from, for messages. */
  source: string;
};

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`${source}: invalid configuration\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** The environment variables the service reads, all of them, in one place. */
export interface Environment {
  WMS_CONFIG?: string | undefined;
  DATABASE_URL?: string | undefined;
  /** Where a new embedded database's template is (default: the package's node_modules/.cache); `none`: create it from nothing. */
  WMS_PGLITE_TEMPLATE_DIR?: string | undefined;
}

export function configPath(explicit: string | undefined, env: Environment): string {
  return resolve(explicit ?? env.WMS_CONFIG ?? 'wiki-matrix-sso.yaml');
}

export function loadConfigFile(path: string, env: Environment = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String(error);
    throw new ConfigError(path, [`cannot read the configuration file: ${why} (create one with \`wiki-matrix-sso config generate\`)`]);
  }
  return parseConfig(text, path, env);
}

export function parseConfig(text: string, source: string, env: Environment = {}): Config {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => yamlProblem(e, text)));
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(withoutEmptySections(raw));
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return resolveSecrets(result.data, source, env);
}

/** `YAML: line 2, column 16: <what is wrong> (in "<that line>")`, on one line. */
function yamlProblem(error: YAML.YAMLError, text: string): string {
  const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:$/, '');
  const at = error.linePos?.[0];
  if (!at) return `YAML: ${what}`;
  const line = (text.split('\n')[at.line - 1] ?? '').trim();
  const excerpt = line.length > 80 ? `${line.slice(0, 77)}...` : line;
  return `YAML: line ${at.line}, column ${at.col}: ${what}${excerpt ? ` (in "${excerpt}")` : ''}`;
}

/** A section whose keys are all commented out reads as `null`; it means "all defaults". */
function withoutEmptySections(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== null));
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${at ? `${at}.` : ''}${key}: unknown key`).join('\n  - ');
    }
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) return `${at}: required (expected ${issue.expected})`;
    return `${at || '(top level)'}: ${issue.message}`;
  });
}

function readSecretFile(path: string, field: string, problems: string[]): string | undefined {
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (value === '') problems.push(`${field}: file ${path} is empty`);
    return value;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.push(`${field}: cannot read ${path} (${code === 'ENOENT' ? 'file not found' : code ?? String(error)})`);
    return undefined;
  }
}

function resolveSecrets(parsed: ParsedConfig, source: string, env: Environment): Config {
  const problems: string[] = [];
  const secret = (obj: Record<string, unknown>, name: string, at: string): string | undefined => {
    const file = obj[`${name}_file`];
    delete obj[`${name}_file`];
    if (typeof file === 'string') return readSecretFile(file, `${at}.${name}_file`, problems);
    return obj[name] as string | undefined;
  };

  const c = structuredClone(parsed) as ParsedConfig & Record<string, unknown>;
  c.database.url = secret(c.database, 'url', 'database') ?? (env.DATABASE_URL || undefined);
  c.wiki.client_secret = secret(c.wiki, 'client_secret', 'wiki');
  c.wiki.api_password = secret(c.wiki, 'api_password', 'wiki');
  c.matrix.access_token = secret(c.matrix, 'access_token', 'matrix');
  if (c.matrix.mas) c.matrix.mas.client_secret = secret(c.matrix.mas, 'client_secret', 'matrix.mas');
  c.admin.token = secret(c.admin, 'token', 'admin');
  c.oidc.key_encryption_secret = secret(c.oidc, 'key_encryption_secret', 'oidc');
  c.oidc.clients.forEach((client, i) => {
    client.client_secret = secret(client, 'client_secret', `oidc.clients.${i}`);
  });
  if (c.oidc.cookie_keys_file !== undefined) {
    const text = readSecretFile(c.oidc.cookie_keys_file, 'oidc.cookie_keys_file', problems);
    c.oidc.cookie_keys = text?.split('\n').map((line) => line.trim()).filter(Boolean);
    delete c.oidc.cookie_keys_file;
    if (c.oidc.cookie_keys?.some((k) => k.length < 32)) problems.push('oidc.cookie_keys_file: cookie keys need at least 32 characters');
  }

  const ids = new Set<string>();
  c.oidc.clients.forEach((client, i) => {
    if (ids.has(client.client_id)) problems.push(`oidc.clients.${i}.client_id: duplicate client id ${client.client_id}`);
    ids.add(client.client_id);
  });

  if (problems.length > 0) throw new ConfigError(source, problems);
  return { ...(c as unknown as Omit<Config, 'source'>), source };
}

/** A deep copy with every secret replaced, safe to log or print. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      (SECRET_KEYS as readonly string[]).includes(key) && v !== undefined ? '[redacted]' : redact(v),
    ]),
  );
}
