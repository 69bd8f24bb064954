// Every statement the service sends, published on a diagnostics channel for whoever wants to see
// them (the query-plan tests EXPLAIN each statement of a real sign-in; the login benchmark counts
// them per login). With no subscriber, publishing is a check of one flag.
import { channel } from 'node:diagnostics_channel';

export interface StatementEvent {
  backend: 'postgres' | 'pglite';
  sql: string;
  params: readonly unknown[];
}

export const STATEMENT_CHANNEL = 'wiki-matrix-sso:db-statement';
const statements = channel(STATEMENT_CHANNEL);

export function publishStatement(backend: StatementEvent['backend'], sql: string, params: readonly unknown[] | undefined): void {
  if (statements.hasSubscribers) statements.publish({ backend, sql, params: params ?? [] } satisfies StatementEvent);
}

/** Calls `listener` with every statement sent until the returned function is called. */
export function onStatement(listener: (event: StatementEvent) => void): () => void {
  const handler = (message: unknown) => listener(message as StatementEvent);
  statements.subscribe(handler);
  return () => void statements.unsubscribe(handler);
}
