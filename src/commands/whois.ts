// `whois`: looks the account up in the database, or, when a running `serve` holds the embedded
// database (PGlite admits one process), asks that service through its admin API.
import { whois, type WhoisAnswer } from '../admin/whois.ts';
import type { Config } from '../config/load.ts';
import { DatabaseError } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { openMigratedDatabase } from './common.ts';
import { AdminApiClient } from './remote.ts';

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
  const api = new AdminApiClient(config, inUse.message, fetchImpl);
  return api.call<WhoisAnswer>('GET', `/whois?q=${encodeURIComponent(query)}`);
}
