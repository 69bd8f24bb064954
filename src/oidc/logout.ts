// Ends everything the provider issued to one account, from outside a request (the moderation
// worker, when a wiki sanction ends a person's sessions): the sessions, grants, codes and tokens
// are deleted, and every relying party that took part in one of those sessions and registered a
// `backchannel_logout_uri` is sent an OpenID Connect Back-Channel Logout token for it (`sub` and
// the `sid` it knows the session by; Synapse requires `sid`), signed with the provider's key.
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
  for (const target of targets) {
    const delivered = await deliver(deps, target.uri, await sign(accountId, target.clientId, target.sid)).catch((error: unknown) => {
      log.warn({ clientId: target.clientId, err: error }, 'the relying party did not take the back-channel logout; its tokens are revoked all the same');
      return false;
    });
    notified.push({ clientId: target.clientId, delivered });
  }
  log.info({ sub: accountId, revoked, notified }, 'ended every session of the account');
  return { revoked, notified };
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
