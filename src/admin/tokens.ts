// Bearer tokens of the admin API. Config holds only their SHA-256 (`admin.api_tokens`), each with a
// name (who did what, in the audit) and scopes; `admin.token` is one more, named "admin", with both
// scopes, for the CLI. A presented token is hashed and compared with each in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/load.ts';

export type Scope = 'read' | 'write';

export interface ApiToken {
  name: string;
  scopes: readonly Scope[];
}

interface StoredToken extends ApiToken {
  digest: Buffer;
}

export const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export class ApiTokens {
  readonly #tokens: StoredToken[];

  constructor(config: Config) {
    const { admin } = config;
    this.#tokens = [
      ...(admin.token ? [{ name: 'admin', scopes: ['read', 'write'] as const, digest: sha256(admin.token) }] : []),
      ...admin.api_tokens.map((t) => ({ name: t.name, scopes: t.scopes, digest: Buffer.from(t.sha256, 'hex') })),
    ];
  }

  get configured(): boolean {
    return this.#tokens.length > 0;
  }

  /** The token presented, if it is one of ours. Every stored token is compared, found or not. */
  verify(presented: string): ApiToken | undefined {
    const digest = sha256(presented);
    let found: StoredToken | undefined;
    for (const token of this.#tokens) if (timingSafeEqual(digest, token.digest) && !found) found = token;
    return found && { name: found.name, scopes: found.scopes };
  }
}
