// Prometheus metrics (`metrics.port`): what the parts of the service report on their channels
// (src/observe.ts), counted with prom-client, plus Node's default process metrics, served at
// `/metrics` on a listener of their own, on loopback by default. One registry per process: `serve`
// with the embedded database runs the worker in the same process, and both count into it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { Logger } from '../log.ts';
import { topics } from '../observe.ts';

const SECONDS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let shared: client.Registry | undefined;

/** This process's registry, subscribed to every channel on first use. */
export function metricsRegistry(): client.Registry {
  shared ??= createRegistry();
  return shared;
}

/** A registry fed by the service's channels; `metricsRegistry` shares one per process. */
export function createRegistry(): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, labelNames: string[] = []) => new client.Counter({ name, help, labelNames, registers: [registry] });
  const histogram = (name: string, help: string, labelNames: string[]) => new client.Histogram({ name, help, labelNames, buckets: SECONDS_BUCKETS, registers: [registry] });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new client.Gauge({ name, help, labelNames, registers: [registry] });

  const signIns = counter('wms_sign_ins_total', 'Sign-ins back from the wiki, by outcome (signed_in, refused, cancelled, failed) and reason (the problem kind).', ['outcome', 'reason']);
  const wikiSeconds = histogram('wms_wiki_request_duration_seconds', 'Requests to the wiki (OAuth endpoints, Action API modules), by api and endpoint.', ['api', 'endpoint']);
  const wikiErrors = counter('wms_wiki_request_errors_total', 'Failed requests to the wiki, by api, endpoint and kind of error.', ['api', 'endpoint', 'error']);
  const tokens = counter('wms_tokens_issued_total', 'Token endpoint grants, by grant type.', ['grant_type']);
  const passes = counter('wms_moderation_passes_total', 'Moderation passes, full or targeted.', ['kind']);
  const passSeconds = histogram('wms_moderation_pass_duration_seconds', 'How long moderation passes took, full or targeted.', ['kind']);
  const actions = counter('wms_moderation_actions_total', 'Moderation actions, by kind (ban, unban, set_power_levels…) and outcome (applied, failed…).', ['kind', 'outcome']);
  const rateLimitWaits = counter('wms_matrix_rate_limit_waits_total', 'Waits the homeserver asked for (M_LIMIT_EXCEEDED).');
  const rateLimitSeconds = counter('wms_matrix_rate_limit_wait_seconds_total', 'Seconds spent waiting as the homeserver asked.');
  const leader = gauge('wms_worker_leader', 'Whether this process leads moderation mirroring (1) or not (0).');
  const cursor = gauge('wms_sync_cursor_timestamp_seconds', 'Where each wiki log\'s cursor stands: the time of the newest entry read (or where reading started).', ['log']);
  const lastPoll = gauge('wms_sync_last_poll_timestamp_seconds', 'When every wiki log was last read.');
  let polledAt: Date | undefined;
  new client.Gauge({
    name: 'wms_sync_lag_seconds',
    help: 'How old the worker\'s view of the wiki logs is: seconds since every log was last read.',
    registers: [registry],
    collect() {
      if (polledAt) this.set((Date.now() - polledAt.getTime()) / 1000);
    },
  });
  leader.set(0);

  topics.signIn.subscribe((e) => signIns.inc({ outcome: e.outcome, reason: e.reason ?? '' }));
  topics.wikiRequest.subscribe((e) => {
    wikiSeconds.observe({ api: e.api, endpoint: e.endpoint }, e.seconds);
    if (e.error) wikiErrors.inc({ api: e.api, endpoint: e.endpoint, error: e.error });
  });
  topics.token.subscribe((e) => tokens.inc({ grant_type: e.grantType }));
  topics.pass.subscribe((e) => {
    const kind = e.full ? 'full' : 'targeted';
    passes.inc({ kind });
    passSeconds.observe({ kind }, e.seconds);
    for (const a of e.actions) actions.inc({ kind: a.kind, outcome: a.outcome });
  });
  topics.rateLimitWait.subscribe((e) => {
    rateLimitWaits.inc();
    rateLimitSeconds.inc(e.seconds);
  });
  topics.leader.subscribe((e) => leader.set(e.leading ? 1 : 0));
  topics.poll.subscribe((e) => {
    polledAt = e.at;
    lastPoll.set(e.at.getTime() / 1000);
    for (const c of e.cursors) cursor.set({ log: c.log }, c.timestamp.getTime() / 1000);
  });
  return registry;
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** Serves `registry` at `/metrics` on its own listener. */
export async function listenForMetrics(registry: client.Registry, options: { host: string; port: number }, log: Logger): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text),
      (error: unknown) => {
        log.error({ err: error }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collecting metrics failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`;
  log.info({ metrics: url }, 'serving metrics');
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
