// The running service's admin API, as the CLI uses it when it cannot do the work itself: the
// embedded database belongs to the running `serve`, or a worker holds the leader lock.
import { ADMIN_API } from '../admin/api.ts';
import type { Config } from '../config/load.ts';
import type { RequestJson } from '../admin/read.ts';
import type { PassSummary, PlanSummary } from '../moderation/requests.ts';

export class AdminApiClient {
  readonly base: string;
  readonly #token: string;
  readonly #fetch: typeof globalThis.fetch;
  readonly #timeoutMs: number;

  constructor(config: Config, why: string, fetchImpl: typeof globalThis.fetch = fetch) {
    if (!config.admin.token) throw new Error(`${why}. To do this while it runs, set admin.token (or admin.token_file) and restart serve: the command then asks it.`);
    this.base = serviceUrl(config);
    this.#token = config.admin.token;
    this.#fetch = fetchImpl;
    this.#timeoutMs = Math.max(config.wiki.timeout, 10) * 1000;
  }

  /** The JSON answer, or undefined for 404; throws with the service's message otherwise. */
  async call<T>(method: 'GET' | 'POST', path: string): Promise<T | undefined> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.base}${ADMIN_API}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new Error(`asking the running service at ${this.base} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (response.status === 404) return undefined;
    const body = (await response.json().catch(() => undefined)) as (T & { message?: string }) | undefined;
    if (!response.ok) throw new Error(`the running service at ${this.base} answered ${response.status}${body?.message ? `: ${body.message}` : ''}`);
    return body;
  }

  /** Waits for a request the leading worker runs, up to `timeoutMs`. */
  async settle(request: RequestJson, timeoutMs: number, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<RequestJson> {
    const deadline = Date.now() + timeoutMs;
    let current = request;
    while (current.state === 'pending' || current.state === 'running') {
      if (Date.now() > deadline) {
        throw new Error(`request ${current.id} is still ${current.state} after ${Math.round(timeoutMs / 1000)} s: is a worker leading? (GET ${ADMIN_API}/sync says)`);
      }
      await sleep(500);
      current = (await this.call<RequestJson>('GET', `/requests/${current.id}`))!;
    }
    return current;
  }
}

/** Where this machine reaches the running service: its own listener, or the public URL over TLS. */
export function serviceUrl(config: Config): string {
  if (config.http.tls) return config.http.public_url.replace(/\/$/, '');
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

/**
 * `sync` through the running service: the leading worker makes the plan (and, unless a dry run,
 * applies exactly that plan). Returns the exit code, as `runSync` does.
 */
export async function syncThroughService(api: AdminApiClient, dryRun: boolean, out: NodeJS.WritableStream, timeoutMs = 10 * 60_000): Promise<number> {
  const plan = await api.settle((await api.call<RequestJson>('POST', '/plans'))!, timeoutMs);
  if (plan.state !== 'done') throw new Error(`the plan ${plan.state}: ${(plan.result as { reason?: string } | null)?.reason ?? 'no reason given'}`);
  const summary = plan.result as PlanSummary;
  const changes = summary.actions.filter((a) => a.kind !== 'report' && a.kind !== 'forget').length;
  if (dryRun) {
    out.write(
      [
        `Dry run by the worker of the running service (${api.base}): ${summary.users} mapped account${summary.users === 1 ? '' : 's'} read; ${changes} change${changes === 1 ? '' : 's'} would be made. Nothing was changed.`,
        ...summary.actions.map((a) => a.description),
        '',
      ].join('\n'),
    );
    return 0;
  }
  const applied = await api.settle((await api.call<RequestJson>('POST', `/plans/${plan.id}/apply`))!, timeoutMs);
  if (applied.state === 'refused') throw new Error(`not applied: ${(applied.result as { reason: string }).reason}`);
  if (applied.state !== 'done') throw new Error(`the pass failed: ${(applied.result as { reason?: string } | null)?.reason ?? 'no reason given'}`);
  const result = applied.result as PassSummary;
  const counts = Object.entries(result.counts).filter(([, n]) => n > 0).map(([outcome, n]) => `${outcome} ${n}`).join(', ') || 'nothing to do';
  out.write(
    [
      `Pass ${result.passId}, run by the worker of the running service (${api.base}): ${summary.users} mapped account${summary.users === 1 ? '' : 's'} read; ${counts}${result.deferred ? `; ${result.deferred} left for the next pass` : ''}.`,
      ...summary.actions.map((a) => a.description),
      ...(result.lacksPower.length ? [`The bot lacks power in: ${result.lacksPower.join(', ')}`] : []),
      '',
    ].join('\n'),
  );
  return (result.counts.failed ?? 0) + (result.counts.lacks_power ?? 0) > 0 ? 1 : 0;
}
