// The OpenID Connect provider homeservers trust: oidc-provider configured for Synapse and MAS.
// It owns the protocol state; the interaction routes (interactions.ts) only sign people in.
import Provider, { type Adapter, type ClientMetadata, type Configuration, type JWK, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/load.ts';
import type { AccountClaimsStore } from '../login/store.ts';
import type { Logger } from '../log.ts';
import type { Problem } from '../views/index.ts';
import { VERSION } from '../version.ts';
import { explicitGroups } from '../wiki/action-api-results.ts';
import type { Pages } from './pages.ts';
import { report, topics } from '../observe.ts';

/**
 * Scopes and the claims each releases. ID tokens carry only `sub` (and protocol claims such as
 * `sid`, `nonce`, `auth_time`); everything else comes from the userinfo endpoint, because
 * oidc-provider keeps scope claims out of ID tokens (`conformIdTokenClaims`). Synapse therefore
 * needs `user_profile_method: userinfo_endpoint` and MAS `fetch_userinfo: true`.
 */
export const CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'preferred_username'],
  email: ['email', 'email_verified'],
  wiki: ['wiki_username', 'groups', 'editcount', 'registered'],
} as const;

export const SCOPES = ['openid', 'offline_access', ...Object.keys(CLAIMS).filter((s) => s !== 'openid')];


export interface ProviderDeps {
  config: Config;
  wikiId: string;
  adapter: new (name: string) => Adapter;
  jwks: { keys: JWK[] };
  /** Accounts with their wiki profile, and whether moderation ended their sessions for a sanction still in force. */
  claims: AccountClaimsStore;
  pages: Pages;
  log: Logger;
}

export function clientMetadata(client: Config['oidc']['clients'][number]): ClientMetadata {
  return {
    client_id: client.client_id,
    client_name: client.client_name ?? client.client_id,
    ...(client.client_secret ? { client_secret: client.client_secret } : {}),
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: client.scopes.join(' '),
    id_token_signed_response_alg: 'RS256',
    ...(client.backchannel_logout_uri
      ? { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: true }
      : {}),
  };
}

export function createProvider(deps: ProviderDeps): Provider {
  const { config, log, pages } = deps;
  const issuer = new URL(config.http.public_url).origin;
  const firstParty = new Set(config.oidc.clients.filter((c) => c.skip_consent).map((c) => c.client_id));

  const configuration: Configuration = {
    adapter: deps.adapter,
    jwks: deps.jwks,
    clients: config.oidc.clients.map(clientMetadata),
    cookies: {
      keys: config.oidc.cookie_keys,
      names: { session: 'wms_session', interaction: 'wms_interaction', resume: 'wms_interaction_resume' },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: Object.fromEntries(Object.entries(CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    scopes: SCOPES,
    features: {
      devInteractions: { enabled: false },
      // A client may revoke only the tokens issued to it.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, _form) => {
          pages.send(ctx, 'logout', { action: ctx.oidc.urlFor('end_session_confirm'), xsrf: ctx.oidc.session!.state!.secret as string });
        },
        postLogoutSuccessSource: async (ctx) => pages.send(ctx, 'logged-out', {}),
      },
    },
    // The authorization code flow only: no implicit or hybrid responses.
    responseTypes: ['code'],
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    // Refresh tokens for every client allowed the grant, not only those asking for offline_access:
    // MAS and tools refresh their access tokens; the grant still ends when the session does.
    // Every client, confidential ones too (RFC 9700 §4.14.2): a rotated-out token used again is
    // taken as stolen, and oidc-provider then revokes the whole grant.
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('openid'),
    ttl: {
      AccessToken: config.oidc.ttl.access_token,
      AuthorizationCode: 60,
      IdToken: config.oidc.ttl.id_token,
      RefreshToken: config.oidc.ttl.refresh_token,
      Session: config.oidc.ttl.session,
      Interaction: config.oidc.ttl.interaction,
      Grant: config.oidc.ttl.refresh_token,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx, sub, token) => {
      const account = await deps.claims.find(deps.wikiId, sub);
      if (!account) return undefined;
      // Presenting a token (refresh, userinfo, code exchange): refused while a wiki sanction that
      // ended this person's sessions stands. oidc-provider answers invalid_grant / invalid_token.
      if (token && account.sessionsEnded) {
        log.info({ sub, kind: token.kind }, 'refused a token: a wiki sanction ended this person\'s sessions');
        return undefined;
      }
      const { profile } = account;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          name: account.username,
          preferred_username: account.localpart,
          wiki_username: account.username,
          ...(profile && {
            ...(profile.email ? { email: profile.email, email_verified: true } : {}),
            groups: explicitGroups(profile.groups),
            editcount: profile.editCount,
            ...(profile.registered ? { registered: profile.registered.toISOString() } : {}),
          }),
        }),
      };
    },
    // A first-party relying party (skip_consent) is granted the scopes and claims it asks for
    // (its client scopes already bound them) without a consent interaction: one interaction per
    // sign-in instead of two. Everything else is oidc-provider's default.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const clientId = oidc.client!.clientId;
      const grantId = oidc.result?.consent?.grantId || oidc.session!.grantIdFor(clientId);
      if (grantId) return oidc.provider.Grant.find(grantId);
      if (!firstParty.has(clientId) || !oidc.account) return undefined;
      const grant = new oidc.provider.Grant({ accountId: oidc.account.accountId, clientId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      const claims = [...oidc.requestParamClaims];
      if (claims.length > 0) grant.addOIDCClaims(claims);
      await grant.save();
      return grant;
    },
    renderError: async (ctx, out, error) => {
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      const problem: Problem = status >= 500 ? { kind: 'server_error' } : { kind: 'bad_request' };
      if (status >= 500) log.error({ err: error }, 'provider error');
      else log.info({ error: out.error, description: out.error_description }, 'refused an invalid request');
      pages.send(ctx, 'error', { problem, requestId: (ctx as KoaContextWithOIDC).state?.requestId });
      ctx.status = status;
    },
    // The provider's only outbound requests are back-channel logouts to URIs the operator configured
    // (clients are static; no dynamic registration, request_uri or client JWKS URIs). Homeservers
    // commonly sit on loopback or a private network, which oidc-provider's SSRF guard refuses.
    fetch: (url, options) => {
      const { dispatcher: _ssrfGuard, ...rest } = options as RequestInit & { dispatcher?: unknown };
      const headers = new Headers(rest.headers);
      headers.set('user-agent', `wiki-matrix-sso/${VERSION}`);
      return globalThis.fetch(url, { ...rest, headers });
    },
    clientBasedCORS: () => false,
    discovery: { claim_types_supported: ['normal'], ui_locales_supported: ['en', 'de', 'fr', 'he'] },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.proxy = config.http.trust_proxy;
  provider.on('server_error', (_ctx, error) => log.error({ err: error }, 'provider server error'));
  provider.on('backchannel.error', (_ctx, error, client) => log.warn({ err: error, client: client.clientId }, 'back-channel logout failed'));
  // A refused exchange says only `invalid_grant` to the client; why (expired, already used, PKCE…) is
  // in error_detail, which names no secret.
  provider.on('grant.error', (ctx, error) =>
    log.warn({ grantType: String(ctx.oidc?.params?.grant_type ?? 'unknown'), error: error.error, detail: (error as { error_detail?: string }).error_detail }, 'refused a token request'),
  );
  provider.on('grant.success', (ctx) => report(topics.token, () => ({ grantType: String(ctx.oidc.params?.grant_type ?? 'unknown') })));
  return provider;
}
