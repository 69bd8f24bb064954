// Rules oidc-provider does not enforce the way this service needs, applied to requests before
// they reach it: the registered client authentication method only, no browser CORS on the
// endpoints homeservers call server-side, and POST to the authorization endpoint.
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { Config } from '../config/load.ts';

/** Endpoints only server-side clients call: a browser origin gets no CORS grant on them. */
const SERVER_SIDE = new Set(['/token', '/token/revocation', '/token/introspection', '/me']);
/** Endpoints where a client authenticates. */
const CLIENT_AUTH = new Set(['/token', '/token/revocation', '/token/introspection']);
const AUTHORIZATION = '/auth';
/** Far above any legitimate request (request objects included); oidc-provider has its own limit too. */
const MAX_BODY = 64 * 1024;

export interface Guarded {
  /** The request to hand to oidc-provider: the original, or a replay of the body read here. */
  req: IncomingMessage;
  /** Set when the guard answered the request itself. */
  answered: boolean;
}

export function createGuards(config: Config) {
  const methods = new Map(config.oidc.clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));

  return async function guard(ctx: Context): Promise<Guarded> {
    const { req } = ctx;
    if (ctx.method === 'OPTIONS' && SERVER_SIDE.has(ctx.path)) {
      // The preflight is answered without any Access-Control-* header, so a browser never sends the real request.
      ctx.vary('Origin');
      ctx.status = 204;
      return { req, answered: true };
    }
    if (ctx.method === 'POST' && ctx.path === AUTHORIZATION && ctx.is('application/x-www-form-urlencoded')) {
      // OIDC Core §3.1.2.1: POST is the same request as GET. Handing it over as GET keeps the
      // cookies SameSite=Lax, which oidc-provider's own POST support would require to be None.
      const body = await readBody(req);
      if (body === undefined) return tooLarge(ctx, req);
      req.method = 'GET';
      req.url = `${AUTHORIZATION}?${new URLSearchParams(body.toString('utf8')).toString()}`;
      return { req, answered: false };
    }
    if (ctx.method === 'POST' && CLIENT_AUTH.has(ctx.path)) {
      const body = await readBody(req);
      if (body === undefined) return tooLarge(ctx, req);
      const refused = wrongAuthMethod(ctx.get('authorization'), ctx.is('application/x-www-form-urlencoded') ? new URLSearchParams(body.toString('utf8')) : new URLSearchParams(), methods);
      if (refused) {
        ctx.status = 401;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'invalid_client', error_description: refused };
        return { req, answered: true };
      }
      return { req: replay(req, body), answered: false };
    }
    return { req, answered: false };
  };
}

/**
 * oidc-provider accepts client_secret_basic and client_secret_post interchangeably for a client
 * registered with either; RFC 7591 makes the registered method the client's only one.
 */
export function wrongAuthMethod(authorization: string, form: URLSearchParams, methods: ReadonlyMap<string, string>): string | undefined {
  const basic = /^basic\s+(\S+)$/i.exec(authorization);
  let clientId = form.get('client_id') ?? undefined;
  let used: string;
  if (basic) {
    used = 'client_secret_basic';
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    try {
      clientId = decodeURIComponent((colon >= 0 ? decoded.slice(0, colon) : decoded).replace(/\+/g, '%20'));
    } catch {
      return undefined; // oidc-provider refuses a malformed header itself
    }
  } else if (form.has('client_secret')) used = 'client_secret_post';
  else if (form.has('client_assertion')) return undefined; // JWT methods: not registered for any client here, oidc-provider refuses them
  else used = 'none';
  if (clientId === undefined) return undefined;
  const registered = methods.get(clientId);
  if (registered === undefined || registered === used) return undefined;
  return `this client authenticates with ${registered}, not ${used}`;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(ctx: Context, req: IncomingMessage): Guarded {
  ctx.status = 413;
  // The rest of the body is left unread: the connection cannot carry another request.
  ctx.set('Connection', 'close');
  ctx.body = { error: 'invalid_request', error_description: 'request body too large' };
  return { req, answered: true };
}

/** The same request with its body readable again, for oidc-provider's own parser. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const stream = Readable.from(body.length ? [body] : []) as unknown as IncomingMessage;
  for (const key of ['headers', 'rawHeaders', 'method', 'url', 'httpVersion', 'httpVersionMajor', 'httpVersionMinor', 'socket', 'connection', 'trailers', 'complete'] as const) {
    Object.defineProperty(stream, key, { value: req[key], writable: true, configurable: true });
  }
  return stream;
}
