// The sign-in between the provider and the wiki. oidc-provider owns the protocol; these routes
// show the pages, send the person to the wiki's OAuth 2 authorize endpoint, and finish the
// interaction with the account the wiki vouched for (or with the error the app should get).
//
//   GET  /interaction/:uid           "Continue with <wiki>" (login) or the consent page; for a
//                                    first-party app (skip_consent) straight on to the wiki
//   POST /interaction/:uid/wiki      → the wiki (PKCE; `state` bound to this interaction and browser)
//   GET  /wiki/callback              ← the wiki; checks state, exchanges the code, applies login
//                                    rules, and finishes the login: the browser goes straight back
//                                    to the provider's resume URL (its resume cookie binds it there)
//   POST /interaction/:uid/consent   grants the requested scopes
//   POST /interaction/:uid/abort     ends the sign-in; the app gets the OAuth error
import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { Config } from '../config/load.ts';
import { commitUnitOfWork } from '../db/unit-of-work.ts';
import type { AccountRepository } from '../identity/accounts.ts';
import type { Logger } from '../log.ts';
import { loginProblem } from '../login/policy.ts';
import type { AccountClaimsStore, WikiLoginStore, WikiProfileStore } from '../login/store.ts';
import { PROBLEM_KINDS, problemInfo, type Problem, type ProblemKind } from '../views/index.ts';
import { WikiApiError, type ActionApiClient } from '../wiki/action-api.ts';
import { WikiOAuthError, type WikiOAuthClient } from '../wiki/oauth.ts';
import { readForm } from '../http/form.ts';
import { report, topics, type SignInEvent } from '../observe.ts';
import { emailRequested } from '../privacy/email.ts';
import type { Pages } from './pages.ts';

export const CALLBACK_PATH = '/wiki/callback';
const BROWSER_COOKIE = 'wms_wiki_login';

export interface InteractionDeps {
  provider: Provider;
  config: Config;
  wikiId: string;
  /** Undefined until the operator configures the wiki's OAuth consumer. */
  wiki: WikiOAuthClient | undefined;
  actionApi: ActionApiClient | undefined;
  logins: WikiLoginStore;
  accounts: AccountRepository;
  profiles: WikiProfileStore;
  /** Accounts, and whether moderation ended their sessions for a sanction still in force: they may not sign in again. */
  claims: AccountClaimsStore;
  pages: Pages;
  clock: () => Date;
  log: Logger;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** For metrics: a rule's refusal (403), the person's cancel, or a failure (the wiki, the service). */
function signInOutcome(problem: Problem): SignInEvent['outcome'] {
  if (problem.kind === 'wiki_cancelled') return 'cancelled';
  return problemInfo(problem).status === 403 ? 'refused' : 'failed';
}

/** Why a sign-in stopped, in words for the log (the person sees the page, the app the OAuth error). */
const DESCRIPTIONS: Partial<Record<ProblemKind, string>> = {
  wiki_cancelled: 'the person cancelled the sign-in',
  account_not_attached: 'the wiki account has no central (global) account',
  account_hidden: 'the wiki account is hidden',
  blocked: 'the wiki account is blocked',
  sanctioned: 'a wiki sanction ended this person\'s sessions and still lasts',
  too_few_edits: 'the wiki account has too few edits',
  account_too_new: 'the wiki account is too new',
  missing_group: 'the wiki account is not in a required group',
  forbidden_group: 'the wiki account is in a group that may not sign in',
  wiki_unavailable: 'the wiki could not be reached',
  wiki_timeout: 'the wiki did not answer in time',
};

export function mountInteractions(router: Router, deps: InteractionDeps): void {
  const { provider, pages, logins, log } = deps;
  const callbackUrl = new URL(CALLBACK_PATH, deps.config.http.public_url).toString();
  const clientConfig = (clientId: string) => deps.config.oidc.clients.find((c) => c.client_id === clientId);

  /** The interaction this browser is in, or an error page when its cookie is missing, stale or for another uid. */
  async function interaction(ctx: Context): Promise<Details | undefined> {
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (!ctx.params.uid || details.uid === ctx.params.uid) return details;
    } catch {
      // SessionNotFound and friends: the cookie is gone, expired or tampered with.
    }
    pages.send(ctx, 'error', { problem: { kind: 'session_invalid' }, requestId: ctx.state.requestId });
    return undefined;
  }

  async function clientName(details: Details): Promise<string> {
    const client = await provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  }

  async function finish(ctx: Context, result: InteractionResults): Promise<void> {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
  }

  /** Shows why the sign-in stopped, with a button that returns to the app with the OAuth error. */
  async function refuse(ctx: Context, uid: string | undefined, problem: Problem): Promise<void> {
    const details = uid ? await provider.Interaction.find(uid) : undefined;
    const uiLocales = details?.params.ui_locales as string | undefined;
    const returnTo =
      details && problemInfo(problem).oauthError
        ? { clientName: await clientName(details as unknown as Details), target: { action: `/interaction/${uid}/abort`, fields: { problem: problem.kind } } }
        : undefined;
    pages.send(ctx, 'error', { problem, requestId: ctx.state.requestId, ...(returnTo && { returnTo }) }, uiLocales);
  }

  /**
   * What the person is told when something failed that the flow did not expect to fail: the Action
   * API behind a login rule (a private wiki's `readapidenied`, a 5xx, a malformed answer), the
   * database, a bug. The log gets what the wiki said; the person gets a page, the app an OAuth error.
   */
  function unexpected(error: unknown, uid: string | undefined): Problem {
    if (error instanceof WikiApiError) {
      log.error(
        { uid, module: error.module, kind: error.kind, apiCode: error.apiCode, httpStatus: error.httpStatus, field: error.field, detail: error.detail },
        error.apiCode === 'readapidenied'
          ? 'the wiki refused to answer the Action API (readapidenied: a private wiki needs wiki.api_user and a bot password)'
          : 'the wiki\'s Action API failed during a sign-in',
      );
      if (error.kind === 'timeout') return { kind: 'wiki_timeout' };
      if (error.kind === 'network' || (error.kind === 'http' && (error.httpStatus ?? 500) >= 500) || error.apiCode === 'maxlag' || error.apiCode === 'ratelimited') return { kind: 'wiki_unavailable' };
      return { kind: 'server_error' };
    }
    log.error({ uid, err: error }, 'a sign-in failed unexpectedly');
    return { kind: 'server_error' };
  }

  // No browser on these routes may end on the JSON error body the API routes get: whatever throws
  // becomes the error page, with the way back to the app when the interaction is still known.
  router.use(['/interaction', CALLBACK_PATH], async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const uid = /^\/interaction\/([^/]+)/.exec(ctx.path)?.[1];
      const problem = unexpected(error, uid);
      try {
        await refuse(ctx, uid, problem);
      } catch (again) {
        log.error({ uid, err: again }, 'cannot show the way back to the app either');
        pages.send(ctx, 'error', { problem, requestId: ctx.state.requestId });
      }
    }
  });

  router.get('/interaction/:uid', async (ctx) => {
    const details = await interaction(ctx);
    if (!details) return;
    const uiLocales = details.params.ui_locales as string | undefined;
    const name = await clientName(details);
    const uid = details.uid;
    if (details.prompt.name === 'login') {
      // One click: a first-party app (skip_consent) already showed its own "Sign in with <wiki>"
      // button, so a second one here would only be in the way. Going straight to the wiki on a GET
      // adds no login CSRF: the sign-in stays bound to this interaction's cookie and to a browser
      // key set now, so a callback finishes only in the browser that started it (as Dex does with
      // a single connector). Third-party apps keep the page, which names who is asking.
      if (clientConfig(String(details.params.client_id))?.skip_consent) {
        await toWiki(ctx, details);
        return;
      }
      pages.send(ctx, 'login', { clientName: name, continueTo: { action: `/interaction/${uid}/wiki` }, cancel: { action: `/interaction/${uid}/abort`, fields: { problem: 'wiki_cancelled' } } }, uiLocales);
      return;
    }
    if (details.prompt.name === 'consent') {
      if (clientConfig(String(details.params.client_id))?.skip_consent) {
        await finish(ctx, { consent: { grantId: await grantRequested(provider, details) } });
        return;
      }
      const account = details.session?.accountId ? await deps.accounts.findByCentralId(deps.wikiId, details.session.accountId) : undefined;
      pages.send(
        ctx,
        'consent',
        {
          clientName: name,
          ...(account && { username: account.username }),
          scopes: String(details.params.scope ?? '').split(' ').filter(Boolean),
          allow: { action: `/interaction/${uid}/consent` },
          deny: { action: `/interaction/${uid}/abort`, fields: { problem: 'wiki_cancelled' } },
        },
        uiLocales,
      );
      return;
    }
    pages.send(ctx, 'error', { problem: { kind: 'bad_request' }, requestId: ctx.state.requestId }, uiLocales);
  });

  /** Sends the browser to the wiki's authorize endpoint, with PKCE and `state` bound to this interaction and browser. */
  async function toWiki(ctx: Context, details: Details): Promise<void> {
    if (!deps.wiki) {
      log.error('sign-in attempted but the wiki OAuth consumer is not configured (wiki.client_id, wiki.client_secret)');
      await refuse(ctx, details.uid, { kind: 'server_error' });
      return;
    }
    const state = randomBytes(32).toString('base64url');
    const browserKey = randomBytes(32).toString('base64url');
    const { url, codeVerifier } = await deps.wiki.start({ redirectUri: callbackUrl, state });
    const expiresAt = new Date(details.exp * 1000);
    await logins.start({ state, interactionUid: details.uid, browserKey, codeVerifier, expiresAt });
    ctx.cookies.set(BROWSER_COOKIE, browserKey, {
      path: CALLBACK_PATH,
      httpOnly: true,
      sameSite: 'lax',
      signed: true,
      secure: ctx.secure,
      expires: expiresAt,
    });
    ctx.status = 303;
    ctx.redirect(url);
  }

  router.post('/interaction/:uid/wiki', async (ctx) => {
    const details = await interaction(ctx);
    if (details) await toWiki(ctx, details);
  });

  router.get(CALLBACK_PATH, async (ctx) => {
    const browserKey = ctx.cookies.get(BROWSER_COOKIE, { signed: true });
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : undefined;

    // A cancel on the wiki comes back without `state`: find the sign-in through this browser's cookie.
    if (!state) {
      const uid = await logins.latestInteractionOf(browserKey);
      const cancelled = ctx.query.error === 'access_denied' || ctx.query.error === 'unauthorized_client';
      log.info({ uid, error: ctx.query.error }, 'the wiki returned without state');
      if (!uid) pages.send(ctx, 'error', { problem: { kind: 'session_invalid' }, requestId: ctx.state.requestId });
      else await refuse(ctx, uid, cancelled ? { kind: 'wiki_cancelled' } : { kind: 'wiki_unavailable' });
      return;
    }

    const claim = await logins.claimCallback(state, browserKey);
    if (!claim.ok) {
      log.warn({ reason: claim.reason }, 'refused a wiki callback');
      pages.send(ctx, 'error', { problem: { kind: 'session_invalid' }, requestId: ctx.state.requestId });
      return;
    }
    const { login } = claim;
    // The interaction this sign-in finishes; gone when the person took longer than oidc.ttl.interaction.
    const pending = await provider.Interaction.find(login.interactionUid);
    // The claim is committed before the wiki is asked: no connection waits in a transaction on it.
    await commitUnitOfWork();
    let outcome: { centralId: string } | { problem: Problem };
    try {
      outcome = pending ? await signIn(ctx, login.state, login.codeVerifier, emailAsked(pending)) : { problem: { kind: 'session_invalid' } };
    } catch (error) {
      outcome = { problem: unexpected(error, login.interactionUid) };
    }
    report(topics.signIn, () => ('problem' in outcome ? { outcome: signInOutcome(outcome.problem), reason: outcome.problem.kind } : { outcome: 'signed_in' as const }));
    if ('problem' in outcome) {
      log.info({ uid: login.interactionUid, problem: outcome.problem.kind }, 'sign-in refused');
      await refuse(ctx, login.interactionUid, outcome.problem);
      return;
    }
    // The login becomes the interaction's result, as interactionResult() would record it, and the
    // browser goes straight back to the authorization. The callback's claim (this state, in the
    // browser holding its binding cookie) vouches for the browser here, where the interaction
    // cookie is not sent (its path is /interaction/<uid>); the resume cookie still binds the
    // authorization to the browser that started it.
    pending!.result = { login: { accountId: outcome.centralId } };
    await pending!.save(Math.max(1, pending!.exp - Math.floor(deps.clock().getTime() / 1000)));
    ctx.status = 303;
    ctx.redirect(pending!.returnTo);
  });

  /** Exchanges the wiki's code, applies the login rules, and records the account: or says why not. */
  async function signIn(ctx: Context, state: string, codeVerifier: string, keepEmail: boolean): Promise<{ centralId: string } | { problem: Problem }> {
    let profile;
    try {
      profile = await deps.wiki!.finish({ callbackUrl: new URL(ctx.originalUrl, callbackUrl), expectedState: state, codeVerifier, redirectUri: callbackUrl });
    } catch (error) {
      if (!(error instanceof WikiOAuthError)) throw error;
      log.warn({ code: error.code, upstream: error.upstreamError }, 'the wiki sign-in failed');
      const problem: Problem =
        error.code === 'access_denied' ? { kind: 'wiki_cancelled' }
        : error.code === 'state_mismatch' ? { kind: 'session_invalid' }
        : error.code === 'upstream_unavailable' ? { kind: 'wiki_unavailable' }
        : error.code === 'invalid_profile' && error.field === 'username' ? { kind: 'account_name_invalid' }
        : { kind: 'server_error' };
      return { problem };
    }
    const problem = await loginProblem(profile, deps.config.login, {
      now: deps.clock(),
      isSitewideBlocked: async (username) => {
        if (!deps.actionApi) throw new Error('the sitewide-only block rule needs the Action API');
        const blocks = await deps.actionApi.getBlocks([username]);
        return blocks.some((block) => block.sitewide);
      },
    });
    if (problem) return { problem };
    if (profile.hidden) return { problem: { kind: 'account_hidden' } };
    // The wiki refuses locked accounts itself; this holds for every sanction that ended sessions,
    // and for the time a wiki lets an account through that moderation already saw sanctioned.
    const known = await deps.claims.find(deps.wikiId, profile.centralId);
    if (known?.sessionsEnded) return { problem: { kind: 'sanctioned' } };
    const account = await deps.accounts.upsertOnLogin({ wiki: deps.wikiId, centralId: profile.centralId, username: profile.username });
    await deps.profiles.save(deps.wikiId, profile, deps.clock(), { keepEmail });
    await logins.recordAccount(state, { wiki: deps.wikiId, centralId: account.centralId });
    log.info({ localpart: account.localpart }, 'signed in');
    return { centralId: account.centralId };
  }

  /** Whether the relying party this sign-in is for asked for the email address, and may have it. */
  function emailAsked(pending: InstanceType<Provider['Interaction']>): boolean {
    return emailRequested(pending.params.scope, clientConfig(String(pending.params.client_id ?? ''))?.scopes ?? []);
  }

  router.post('/interaction/:uid/consent', async (ctx) => {
    const details = await interaction(ctx);
    if (!details) return;
    if (details.prompt.name !== 'consent') {
      pages.send(ctx, 'error', { problem: { kind: 'bad_request' }, requestId: ctx.state.requestId });
      return;
    }
    await finish(ctx, { consent: { grantId: await grantRequested(provider, details) } });
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    const details = await interaction(ctx);
    if (!details) return;
    const form = await readForm(ctx);
    const kind = PROBLEM_KINDS.find((k) => k === form.get('problem')) ?? 'wiki_cancelled';
    const oauthError = problemInfo(kind).oauthError ?? 'access_denied';
    await finish(ctx, { error: oauthError, error_description: DESCRIPTIONS[kind] ?? 'the sign-in did not succeed' });
  });
}

/** A grant of exactly what the interaction asks for (scopes and claims), as consent gives it. */
async function grantRequested(provider: Provider, details: Details): Promise<string> {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? (await provider.Grant.find(grantId))!
    : new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
  const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}
