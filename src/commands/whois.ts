// `whois`: looks the account up in the database, or, when a running `serve` holds the embedded
// database (PGlite admits one process), asks that service through its admin API.
import { ADMIN_API } from '../admin/api.ts';
import { whois, type WhoisAnswer } from '../admin/whois.ts';
import type { Config } from '../config/load.ts';
import { DatabaseError } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { openMigratedDatabase } from './common.ts';

export async function lookUp(config: Config, log: Logger, query: string, fetchImpl: typeof globalThis.fetch = fetch): Promise<WhoisAnswer | undefined> {
  let db;
  try {
    db = await openMigratedDatabase(config, log);
  } catch (error) {
    if (!(error instanceof DatabaseError) || error.code !== 'in_use') throw error;
    return askService(config, query, error, fetchImpl);
  }
  try {
    return await whois(db, config, query);
  } finally {
    await db.close();
  }
}

async function askService(config: Config, query: string, inUse: DatabaseError, fetchImpl: typeof globalThis.fetch): Promise<WhoisAnswer | undefined> {
  if (!config.admin.token) {
    throw new Error(`${inUse.message}. To look people up while it runs, set admin.token (or admin.token_file) and restart serve: whois then asks it.`);
  }
  const base = serviceUrl(config);
  let response: Response;
  try {
    response = await fetchImpl(`${base}${ADMIN_API}/whois?q=${encodeURIComponent(query)}`, {
      headers: { authorization: `Bearer ${config.admin.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(config.wiki.timeout * 1000),
    });
  } catch (error) {
    throw new Error(`${inUse.message}; asking the running service at ${base} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (response.status === 404) return undefined;
  const body = (await response.json().catch(() => undefined)) as (WhoisAnswer & { message?: string }) | undefined;
  if (!response.ok) throw new Error(`the running service at ${base} answered ${response.status}${body?.message ? `: ${body.message}` : ''}`);
  return body;
}

/** Where this machine reaches the running service: its own listener, or the public URL over TLS. */
function serviceUrl(config: Config): string {
  if (config.http.tls) return config.http.public_url.replace(/\/$/, '');
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}
