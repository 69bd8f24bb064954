// One transaction per step of a sign-in. A request of the sign-in flow runs as a unit of work: the
// statements made in its async context (oidc-provider's adapter calls, the login stores) share one
// transaction on one connection, begun at the first statement and committed before the response
// leaves. That is one commit (one WAL flush) per step instead of one per statement, and no browser
// can reach the next step, on any process, before the previous one is durable.
//
// The backend decides what a unit means: PostgreSQL checks a connection out of its pool for it;
// PGlite, a single connection shared by every request, runs statements as they come (holding its
// one connection through a request would stall all the others).
import { AsyncLocalStorage } from 'node:async_hooks';

/** A backend's transaction for one unit of work. */
export interface UnitSession {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export class UnitOfWork {
  #session: UnitSession | undefined;
  #opening: Promise<unknown> | undefined;
  /** Set once the unit has ended: a statement made later (work left running) commits on its own. */
  closed = false;

  /** The transaction of this unit, opened by `open` on the first statement. */
  session<S extends UnitSession>(open: () => Promise<S>): Promise<S> {
    this.#opening ??= open().then(
      (session) => (this.#session = session),
      (error) => {
        this.#opening = undefined;
        throw error;
      },
    );
    return this.#opening as Promise<S>;
  }

  /** Commits what the unit did so far; the next statement opens a new transaction. */
  commit(): Promise<void> {
    return this.#end('commit');
  }

  rollback(): Promise<void> {
    return this.#end('rollback');
  }

  async #end(how: 'commit' | 'rollback'): Promise<void> {
    const opening = this.#opening;
    if (!opening) return;
    this.#opening = undefined;
    await opening.catch(() => undefined);
    const session = this.#session;
    this.#session = undefined;
    await session?.[how]();
  }
}

const units = new AsyncLocalStorage<UnitOfWork>();

/** The unit of work of the current async context, if any. */
export function currentUnitOfWork(): UnitOfWork | undefined {
  const unit = units.getStore();
  return unit?.closed ? undefined : unit;
}

/**
 * Runs `fn` as a unit of work: committed when it returns (unless `fn` committed already), rolled
 * back when it throws.
 */
export async function withUnitOfWork<T>(fn: (unit: UnitOfWork) => Promise<T>): Promise<T> {
  const unit = new UnitOfWork();
  let result: T;
  try {
    result = await units.run(unit, () => fn(unit));
  } catch (error) {
    unit.closed = true;
    await unit.rollback().catch(() => undefined);
    throw error;
  }
  unit.closed = true;
  await unit.commit();
  return result;
}

/**
 * Commits the current unit's work so far, if there is a unit: before waiting on something slow
 * (the wiki), so that no connection sits idle in a transaction meanwhile.
 */
export async function commitUnitOfWork(): Promise<void> {
  await currentUnitOfWork()?.commit();
}

/** Runs `fn` outside any unit of work: its statements commit one by one, as without one. */
export function outsideUnitOfWork<T>(fn: () => T): T {
  return units.exit(fn);
}
