// What the service reports about itself, for metrics: each part publishes what it saw on a
// `node:diagnostics_channel` channel, and whoever wants to count it (src/metrics) subscribes. The
// parts that publish know nothing of who listens, so nothing below the metrics imports them; with
// no subscriber, publishing is a check of one flag.
import { channel } from 'node:diagnostics_channel';

/** One sign-in that came back from the wiki: signed in, refused by a rule, cancelled, or failed. */
export interface SignInEvent {
  outcome: 'signed_in' | 'refused' | 'cancelled' | 'failed';
  /** Why not (a problem kind such as `blocked`), unless signed in. */
  reason?: string;
}

/** One request to the wiki: the OAuth endpoints or an Action API module, with its duration. */
export interface WikiRequestEvent {
  api: 'oauth' | 'action';
  /** `token`, `profile`, or the Action API module (`list=blocks`). */
  endpoint: string;
  seconds: number;
  /** The kind of failure (`timeout`, `http`, `api`…), when it failed. */
  error?: string;
}

/** A moderation pass and what its actions did. */
export interface PassEvent {
  full: boolean;
  seconds: number;
  /** Per action: its kind and outcome (`applied`, `failed`…). */
  actions: readonly { kind: string; outcome: string }[];
}

/** The worker became the leader, or stopped being it. */
export interface LeaderEvent {
  leading: boolean;
}

/** A wait the homeserver asked for (`M_LIMIT_EXCEEDED`). */
export interface RateLimitWaitEvent {
  seconds: number;
}

/** A log poll that read every log: where each log's cursor now stands. */
export interface PollEvent {
  at: Date;
  cursors: readonly { log: string; timestamp: Date }[];
}

/** Tokens the provider issued at the token endpoint, by grant type. */
export interface TokenEvent {
  grantType: string;
}

/** A typed `diagnostics_channel` channel. */
export interface Topic<T> {
  readonly hasSubscribers: boolean;
  publish(event: T): void;
  /** Listens until the returned function is called. */
  subscribe(listener: (event: T) => void): () => void;
}

function topic<T>(name: string): Topic<T> {
  const c = channel(`wiki-matrix-sso:${name}`);
  return {
    get hasSubscribers() {
      return c.hasSubscribers;
    },
    publish: (event) => c.publish(event),
    subscribe(listener) {
      const handler = (message: unknown) => listener(message as T);
      c.subscribe(handler);
      return () => void c.unsubscribe(handler);
    },
  };
}

export const topics = {
  signIn: topic<SignInEvent>('sign-in'),
  wikiRequest: topic<WikiRequestEvent>('wiki-request'),
  pass: topic<PassEvent>('moderation-pass'),
  leader: topic<LeaderEvent>('leader'),
  rateLimitWait: topic<RateLimitWaitEvent>('matrix-rate-limit-wait'),
  poll: topic<PollEvent>('log-poll'),
  token: topic<TokenEvent>('token'),
};

/** Publishes the event `make` builds, when anyone listens (otherwise it is not even built). */
export function report<T>(target: Topic<T>, make: () => T): void {
  if (target.hasSubscribers) target.publish(make());
}
