// Each request of the sign-in flow (the provider's authorization, token and userinfo endpoints,
// and the interaction routes) is one step, and runs as one unit of work: its statements
// share one transaction (src/db/unit-of-work.ts). The transaction commits before the response
// leaves, so the browser's next request, on whichever process, finds what this one wrote; if the
// commit fails, the person gets a plain 503 instead of a redirect to a step that would not work.
import type { ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import { withUnitOfWork, type UnitOfWork } from '../db/unit-of-work.ts';
import type { Logger } from '../log.ts';

// Logout (/session/end) is left out: oidc-provider calls the relying parties' back-channel logout
// endpoints during that request, and a transaction must not stay open across them.
const STEPS = /^\/(auth|token|me|interaction|wiki\/callback)(\/|$)/;

export function stepTransactions(log: Logger): Middleware {
  return async (ctx, next) => {
    if (!STEPS.test(ctx.path)) return next();
    await withUnitOfWork(async (unit) => {
      const commit = holdUntilCommitted(ctx.res, unit, (error) => log.error({ err: error, requestId: ctx.state.requestId, path: ctx.path }, 'could not commit this step of the sign-in'));
      await next();
      // Our own routes are answered once this returns; oidc-provider's endpoints, which answer
      // themselves, are waiting in holdUntilCommitted already. Either way the answer waits for this.
      await commit();
    });
  };
}

/**
 * Delays the response's first write until the unit has committed. Koa (ours and oidc-provider's)
 * sends a page or a redirect with one `res.end(body)`, so nothing has reached the socket before.
 * Returns the commit, started at most once: whether it succeeded.
 */
function holdUntilCommitted(res: ServerResponse, unit: UnitOfWork, failed: (error: unknown) => void): () => Promise<boolean> {
  const { write, end } = res;
  let committed: Promise<boolean> | undefined;
  const commit = () =>
    (committed ??= unit.commit().then(
      () => true,
      (error) => {
        failed(error);
        return false;
      },
    ));
  const restore = () => {
    res.write = write;
    res.end = end;
  };
  const refuse = () => {
    restore();
    if (res.headersSent) return void res.destroy();
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = 503;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('retry-after', '5');
    (end as (...a: unknown[]) => ServerResponse).call(res, 'The service could not save this step of your sign-in. Please try again in a moment.\n');
  };
  res.write = function heldWrite(this: ServerResponse, ...args: unknown[]) {
    void commit().then((ok) => (ok ? (write as (...a: unknown[]) => boolean).apply(res, args) : refuse()));
    return true;
  } as typeof res.write;
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]) {
    void commit().then((ok) => {
      if (!ok) return refuse();
      restore();
      (end as (...a: unknown[]) => ServerResponse).apply(res, args);
    });
    return res;
  } as typeof res.end;
  return commit;
}
