// The provider's signing keys, stored so that every serve process signs with the same keys and
// relying parties' cached JWKS stay valid across restarts. Private members are encrypted with a
// key derived from oidc.key_encryption_secret, so a database dump alone cannot forge ID tokens.
//
// Rotation overlaps: a new key signs at once, and the keys it replaces stay published (verify
// only) until every token they signed has expired, then `prune` removes them.
import { createCipheriv, createDecipheriv, randomBytes, scrypt, type BinaryLike, type ScryptOptions } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { ADVISORY_KEY_SQL, type Database, type Queryable } from '../db/index.ts';

export const SIGNING_ALGS = ['RS256', 'ES256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** A private JWK as oidc-provider's `jwks` option takes it. */
export type SigningJwk = JWK & { kid: string; alg: SigningAlg; use: 'sig' };

export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  createdAt: Date;
  /** Undefined while the key signs; afterwards, when it stops being published. */
  retireAfter: Date | undefined;
}

export interface RotationSummary {
  added: string[];
  retired: string[];
  pruned: string[];
}

export class SigningKeyDecryptionError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the stored signing keys cannot be decrypted with oidc.key_encryption_secret: was it changed?', options);
    this.name = 'SigningKeyDecryptionError';
  }
}

export class MissingSigningKeyError extends Error {
  constructor(alg: SigningAlg) {
    super(`no active ${alg} signing key is stored; the service creates its keys when it starts (SigningKeyStore.ensure)`);
    this.name = 'MissingSigningKeyError';
  }
}

const LOCK = 'wiki-matrix-sso:signing-keys';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;
// scrypt rather than a plain KDF because the secret may be a passphrase; the parameters are
// stored with each row so they can be raised later without losing old keys.
const KDF = 'scrypt:32768:8:1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const SALT_BYTES = 16;

interface KeyRow {
  [column: string]: unknown;
  kid: string;
  alg: SigningAlg;
  public_jwk: JWK;
  private_kdf: string;
  private_salt: Uint8Array;
  private_iv: Uint8Array;
  private_tag: Uint8Array;
  private_ciphertext: Uint8Array;
  created_at: Date;
  retire_after: Date | null;
}

interface NewKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  privateMembers: Record<string, string>;
}

function deriveKey(secret: string, kdf: string, salt: Uint8Array): Promise<Buffer> {
  const [name, n, r, p] = kdf.split(':');
  if (name !== 'scrypt') return Promise.reject(new Error(`unknown key derivation "${kdf}" in oidc_signing_keys`));
  const options: ScryptOptions = { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * Number(n) * Number(r) };
  return new Promise((resolve, reject) =>
    scrypt(secret, salt as BinaryLike, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

async function generate(alg: SigningAlg): Promise<NewKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const privateMembers: Record<string, string> = {};
  const publicJwk: JWK = { ...jwk };
  for (const member of PRIVATE_MEMBERS) {
    if (jwk[member] !== undefined) privateMembers[member] = jwk[member];
    delete publicJwk[member];
  }
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg, publicJwk: { ...publicJwk, kid, alg, use: 'sig' }, privateMembers };
}

export interface SigningKeyStoreOptions {
  /** oidc.key_encryption_secret */
  secret: string;
  clock?: () => Date;
}

export class SigningKeyStore {
  readonly #db: Database;
  readonly #secret: string;
  readonly #clock: () => Date;
  /** Derived keys by salt: scrypt is deliberately slow, and a process loads the same rows again. */
  readonly #derived = new Map<string, Promise<Buffer>>();

  constructor(db: Database, options: SigningKeyStoreOptions) {
    if (!options.secret) throw new Error('oidc.key_encryption_secret is empty: the signing keys cannot be stored without it');
    this.#db = db;
    this.#secret = options.secret;
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Creates the missing active key of each algorithm (on first start); says whether it created
   * any. Processes starting at once queue on an advisory lock, so only the first generates keys.
   */
  async ensure(): Promise<boolean> {
    if ((await this.#activeAlgs(this.#db)).size === SIGNING_ALGS.length) return false;
    return this.#locked(async (tx) => {
      const active = await this.#activeAlgs(tx);
      let created = false;
      for (const alg of SIGNING_ALGS) {
        if (!active.has(alg)) {
          await this.#insert(tx, await generate(alg));
          created = true;
        }
      }
      return created;
    });
  }

  /**
   * The private JWKS for oidc-provider's `jwks` option. oidc-provider signs with the first key
   * of the requested algorithm, so the active keys come first, RS256 before ES256 (RS256 is what
   * Synapse and MAS expect by default), then the retired keys, still published for verification.
   */
  async load(): Promise<{ keys: SigningJwk[] }> {
    const { rows } = await this.#db.query<KeyRow>(
      `SELECT * FROM oidc_signing_keys WHERE retire_after IS NULL OR retire_after > $1
       ORDER BY retire_after IS NULL DESC, alg = 'RS256' DESC, created_at DESC, kid`,
      [this.#clock()],
    );
    for (const alg of SIGNING_ALGS) {
      if (!rows.some((row) => row.alg === alg && row.retire_after === null)) throw new MissingSigningKeyError(alg);
    }
    return { keys: await Promise.all(rows.map((row) => this.#decrypt(row))) };
  }

  /** Every stored key, active first, for operators. */
  async list(): Promise<SigningKeyInfo[]> {
    const { rows } = await this.#db.query<KeyRow>(
      `SELECT kid, alg, created_at, retire_after FROM oidc_signing_keys
       ORDER BY retire_after IS NULL DESC, alg = 'RS256' DESC, created_at DESC, kid`,
    );
    return rows.map((row) => ({ kid: row.kid, alg: row.alg, createdAt: row.created_at, retireAfter: row.retire_after ?? undefined }));
  }

  /**
   * Adds a new key per algorithm that signs from now on, and retires the previous ones: they
   * stay published for `maxTokenLifetimeSeconds` (the longest lifetime of a token they may have
   * signed), then `prune` deletes them. Running processes keep their loaded keys: restart them.
   */
  async rotate(options: { maxTokenLifetimeSeconds: number }): Promise<RotationSummary> {
    const lifetime = options.maxTokenLifetimeSeconds;
    if (!Number.isFinite(lifetime) || lifetime < 0) throw new RangeError(`maxTokenLifetimeSeconds must be a non-negative number, not ${lifetime}`);
    const fresh = await Promise.all(SIGNING_ALGS.map(generate));
    const retired = await this.#locked(async (tx) => {
      const now = this.#clock();
      const { rows } = await tx.query<{ kid: string }>(
        'UPDATE oidc_signing_keys SET retire_after = $1 WHERE retire_after IS NULL RETURNING kid',
        [new Date(now.getTime() + lifetime * 1000)],
      );
      for (const key of fresh) await this.#insert(tx, key);
      return rows.map((row) => row.kid).sort();
    });
    return { added: fresh.map((key) => key.kid), retired, pruned: await this.prune() };
  }

  /** Deletes retired keys whose overlap has ended; returns their kids. */
  async prune(): Promise<string[]> {
    const { rows } = await this.#db.query<{ kid: string }>(
      'DELETE FROM oidc_signing_keys WHERE retire_after <= $1 RETURNING kid',
      [this.#clock()],
    );
    return rows.map((row) => row.kid).sort();
  }

  async #activeAlgs(q: Queryable): Promise<Set<string>> {
    const { rows } = await q.query<{ alg: string }>('SELECT alg FROM oidc_signing_keys WHERE retire_after IS NULL');
    return new Set(rows.map((row) => row.alg));
  }

  #locked<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${ADVISORY_KEY_SQL})`, [LOCK]);
      return fn(tx);
    });
  }

  async #insert(tx: Queryable, key: NewKey): Promise<void> {
    const salt = randomBytes(SALT_BYTES);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', await this.#key(KDF, salt), iv);
    // The kid is authenticated too, so a ciphertext copied onto another row does not decrypt.
    cipher.setAAD(Buffer.from(key.kid));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(key.privateMembers)), cipher.final()]);
    await tx.query(
      `INSERT INTO oidc_signing_keys
         (kid, alg, public_jwk, private_kdf, private_salt, private_iv, private_tag, private_ciphertext, created_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)`,
      [key.kid, key.alg, JSON.stringify(key.publicJwk), KDF, salt, iv, cipher.getAuthTag(), ciphertext, this.#clock()],
    );
  }

  async #decrypt(row: KeyRow): Promise<SigningJwk> {
    const key = await this.#key(row.private_kdf, row.private_salt);
    let privateMembers: Record<string, string>;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, row.private_iv);
      decipher.setAAD(Buffer.from(row.kid));
      decipher.setAuthTag(row.private_tag);
      privateMembers = JSON.parse(Buffer.concat([decipher.update(row.private_ciphertext), decipher.final()]).toString('utf8'));
    } catch (error) {
      throw new SigningKeyDecryptionError({ cause: error });
    }
    return { ...row.public_jwk, ...privateMembers, kid: row.kid, alg: row.alg, use: 'sig' };
  }

  #key(kdf: string, salt: Uint8Array): Promise<Buffer> {
    const id = `${kdf}/${Buffer.from(salt).toString('base64')}`;
    let key = this.#derived.get(id);
    if (!key) {
      key = deriveKey(this.#secret, kdf, salt);
      key.catch(() => this.#derived.delete(id));
      this.#derived.set(id, key);
    }
    return key;
  }
}
