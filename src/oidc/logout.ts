// Ends everything the provider issued to one account, from outside a request (the moderation
// worker, when a wiki sanction ends a person's sessions): the sessions, grants, codes and tokens
// are deleted, and every relying party that took part in one of those sessions and registered a
// `backchannel_logout_uri` is sent an OpenID Connect Back-Channel Logout token for it (`sub` and
// the `sid` it knows the session by; Synapse requires `sid`), signed with the provider's key. A
// relying party that does not take it (down, refusing) is kept in `backchannel_logouts` and tried
// again after each moderation pass, with back-off, until it does or its session would have ended.
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import type { Config } from '../config/load.ts';
import type { Database } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { revokeAccount } from './adapter.ts';
import { SigningKeyStore } from './keys.ts';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface EndSessionsDeps {
  db: Database;
  config: Config;
  log: Logger;
  fetch?: typeof globalThis.fetch;
  clock?: () => Date;
}

export interface EndedSessions {
  /** Rows deleted: sessions, grants, codes and tokens. */
  revoked: number;
  /** Each logout token sent: to which client, and whether it accepted it. */
  notified: { clientId: string; delivered: boolean }[];
}

/** Revokes every session and token of `accountId` and tells the relying parties concerned. */
export async function endAccountSessions(deps: EndSessionsDeps, accountId: string): Promise<EndedSessions> {
  const log = deps.log.child({ component: 'session-end' });
  const { rows } = await deps.db.query<{ payload: { authorizations?: Record<string, { sid?: string }> } }>(
    "SELECT payload FROM oidc_payloads WHERE model = 'Session' AND payload->>'accountId' = $1",
    [accountId],
  );
  const sessions = rows.flatMap((row) => Object.entries(row.payload.authorizations ?? {}).flatMap(([clientId, a]) => (a.sid ? [{ clientId, sid: a.sid }] : [])));
  // Revoked first: whatever happens to the notices, nothing issued to the account works any more.
  const revoked = await revokeAccount(deps.db, accountId);
  const notified: EndedSessions['notified'] = [];
  const targets = sessions.flatMap((s) => {
    const client = deps.config.oidc.clients.find((c) => c.client_id === s.clientId);
    return client?.backchannel_logout_uri ? [{ ...s, uri: client.backchannel_logout_uri }] : [];
  });
  if (targets.length === 0) return { revoked, notified };
  const sign = await signer(deps);
  const now = (deps.clock ?? (() => new Date()))();
  for (const target of targets) {
    const delivered = await attempt(deps, target.uri, await sign(accountId, target.clientId, target.sid), log, target.clientId);
    if (!delivered) {
      await deps.db.query('INSERT INTO backchannel_logouts (client_id, sub, sid, next_attempt_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
        target.clientId, accountId, target.sid, new Date(now.getTime() + RETRY_BASE_MS), new Date(now.getTime() + deps.config.oidc.ttl.session * 1000),
      ]);
    }
    notified.push({ clientId: target.clientId, delivered });
  }
  log.info({ sub: accountId, revoked, notified }, 'ended every session of the account');
  return { revoked, notified };
}

const RETRY_BASE_MS = 10_000;
const RETRY_MAX_MS = 10 * 60_000;

/** A back-channel logout that ended on a later try: delivered, or given up. */
export interface SettledLogout {
  clientId: string;
  /** The account (`sub`) whose session it ended. */
  accountId: string;
  outcome: 'delivered' | 'dropped';
  /** How many times it was sent, the first (when the sessions ended) included. */
  tries: number;
}

export interface PendingLogoutsResult {
  delivered: number;
  pending: number;
  dropped: number;
  /** Each logout that was delivered or given up on this call, for the audit. */
  settled: SettledLogout[];
}

/**
 * Tries the back-channel logouts that are due again; delivered ones are done, expired ones (or of
 * a client no longer configured) are dropped with a warning. Says how many were delivered.
 */
export async function deliverPendingLogouts(deps: EndSessionsDeps): Promise<PendingLogoutsResult> {
  const log = deps.log.child({ component: 'session-end' });
  const now = (deps.clock ?? (() => new Date()))();
  const { rows } = await deps.db.query<{ id: string; client_id: string; sub: string; sid: string; attempts: number; expires_at: Date }>(
    'SELECT id::text AS id, client_id, sub, sid, attempts, expires_at FROM backchannel_logouts WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 100',
    [now],
  );
  const result: PendingLogoutsResult = { delivered: 0, pending: 0, dropped: 0, settled: [] };
  if (rows.length === 0) return result;
  const sign = await signer(deps);
  for (const row of rows) {
    const uri = deps.config.oidc.clients.find((c) => c.client_id === row.client_id)?.backchannel_logout_uri;
    if (!uri || new Date(row.expires_at).getTime() <= now.getTime()) {
      await deps.db.query('DELETE FROM backchannel_logouts WHERE id = $1::bigint', [row.id]);
      log.warn({ clientId: row.client_id, sub: row.sub, attempts: row.attempts }, 'gave up a back-channel logout: the relying party never took it before its session would have ended');
      result.dropped += 1;
      result.settled.push({ clientId: row.client_id, accountId: row.sub, outcome: 'dropped', tries: row.attempts });
    } else if (await attempt(deps, uri, await sign(row.sub, row.client_id, row.sid), log, row.client_id)) {
      await deps.db.query('DELETE FROM backchannel_logouts WHERE id = $1::bigint', [row.id]);
      log.info({ clientId: row.client_id, sub: row.sub, attempts: row.attempts + 1 }, 'a back-channel logout was delivered on a later try');
      result.delivered += 1;
      result.settled.push({ clientId: row.client_id, accountId: row.sub, outcome: 'delivered', tries: row.attempts + 1 });
    } else {
      const wait = Math.min(RETRY_BASE_MS * 2 ** row.attempts, RETRY_MAX_MS);
      await deps.db.query('UPDATE backchannel_logouts SET attempts = attempts + 1, next_attempt_at = $2 WHERE id = $1::bigint', [row.id, new Date(now.getTime() + wait)]);
      result.pending += 1;
    }
  }
  return result;
}

async function attempt(deps: EndSessionsDeps, uri: string, token: string, log: Logger, clientId: string): Promise<boolean> {
  try {
    if (await deliver(deps, uri, token)) return true;
    log.warn({ clientId }, 'the relying party refused the back-channel logout; it is tried again later');
  } catch (error) {
    log.warn({ clientId, err: error }, 'the relying party did not answer the back-channel logout; it is tried again later');
  }
  return false;
}

async function signer(deps: EndSessionsDeps) {
  const { keys } = await new SigningKeyStore(deps.db, { secret: deps.config.oidc.key_encryption_secret, ...(deps.clock && { clock: deps.clock }) }).load();
  const jwk = keys[0]!;
  const key = await importJWK(jwk, jwk.alg);
  const issuer = deps.config.http.public_url;
  return (sub: string, audience: string, sid: string) =>
    new SignJWT({ sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } })
      .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('2m')
      .setJti(randomUUID())
      .sign(key);
}

async function deliver(deps: EndSessionsDeps, uri: string, token: string): Promise<boolean> {
  const response = await (deps.fetch ?? globalThis.fetch)(uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
    signal: AbortSignal.timeout(10_000),
  });
  await response.body?.cancel().catch(() => {});
  return response.ok;
}
