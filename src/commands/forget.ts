// `forget`: removes a person's personal data (privacy/forget.ts). Destructive and not undoable,
// so by default it only shows what it would do; `--yes` does it. When a running `serve` holds the
// embedded database, it asks that service to do it through the admin API, as `whois` does.
import { userInfo } from 'node:os';
import type { Writable } from 'node:stream';
import { forgetJson, type ForgetJson } from '../admin/read.ts';
import type { Config } from '../config/load.ts';
import { DatabaseError } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { forgetPerson } from '../privacy/forget.ts';
import { openMigratedDatabase } from './common.ts';
import { AdminApiClient } from './remote.ts';

export interface ForgetCommand {
  config: Config;
  log: Logger;
  who: string;
  /** Do it; without it, a dry run. */
  yes: boolean;
  /** Who is doing it, for the audit; default the operating-system user. */
  by?: string | undefined;
  out?: Writable;
  fetch?: typeof globalThis.fetch;
}

/** Exit codes: 0 done (or shown), 1 nobody matches. */
export async function runForget(command: ForgetCommand): Promise<number> {
  const out = command.out ?? process.stdout;
  const by = command.by?.trim() || `${userInfo().username} (command line)`;
  const result = await forget(command, by);
  if (!result) {
    out.write(`no account matches "${command.who}"\n`);
    return 1;
  }
  out.write(describe(result));
  if (result.dry_run) out.write(`\nNothing was changed. Run again with --yes to forget ${result.person.username}; it cannot be undone.\n`);
  else command.log.info({ opaqueId: result.opaque_id, by }, 'forgot a person');
  return 0;
}

/** What was forgotten, in the admin API's form: the answer of the running service, or the same made here. */
async function forget(command: ForgetCommand, by: string): Promise<ForgetJson | undefined> {
  let db;
  try {
    db = await openMigratedDatabase(command.config, command.log);
  } catch (error) {
    if (!(error instanceof DatabaseError) || error.code !== 'in_use') throw error;
    const api = new AdminApiClient(command.config, error.message, command.fetch);
    // The service records its token's name as the one who acted, and who asked beside it.
    return api.call<ForgetJson>('POST', '/forget', { person: command.who, dry_run: !command.yes, on_behalf_of: by });
  }
  try {
    const result = await forgetPerson({ db, config: command.config }, command.who, { performedBy: by, dryRun: !command.yes });
    return result && forgetJson(result);
  } finally {
    await db.close();
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function describe(result: ForgetJson): string {
  const { person, erased, audit } = result;
  const [erase, keep, handOver, takeBack] = (result.dry_run ? ['erase', 'keep', 'hand over', 'take back'] : ['erased', 'kept', 'handed over', 'taken back']).map((v) => v.padEnd(12));
  const lines = [
    result.dry_run
      ? `Dry run: forgetting ${person.username} (central user id ${person.central_id} on ${person.wiki}; ${person.matrix_ids.join(', ')}) would:`
      : `Forgot ${person.username} (central user id ${person.central_id} on ${person.wiki}; ${person.matrix_ids.join(', ')}):`,
    `  ${erase}the account (username, display name, localpart, Matrix ID), ${plural(erased.wiki_profiles, 'cached wiki profile')} (groups, edit count, email),`,
    `${' '.repeat(14)}${plural(erased.sign_ins, 'sign-in')}, ${plural(erased.provider_records, 'session, grant or token', 'sessions, grants and tokens')}, ${plural(erased.pending_logouts, 'pending logout')}, ${plural(erased.session_ends, 'session-end record')}`,
    `  ${keep}${plural(audit.re_keyed, 'audit entry', 'audit entries')} under ${result.dry_run ? 'a new opaque id' : result.opaque_id}, names removed; ${plural(audit.mentions_removed, 'mention')} elsewhere removed`,
  ];
  if (result.handed_over.length > 0) {
    lines.push(`  ${handOver}sanctions that stay in Matrix; the service no longer lifts them, so a moderator does when they end:`);
    for (const h of result.handed_over) {
      const what = h.kind === 'ban' ? `ban of ${h.user_id} in ${h.room_id}` : h.kind === 'policy_rule' ? `policy rule against ${h.user_id} in ${h.room_id}` : `suspension of ${h.user_id}`;
      const ref = h.cause.block_id !== null ? `, block #${h.cause.block_id}` : '';
      lines.push(`${' '.repeat(14)}${what} (${h.cause.kind.replace(/_/g, ' ')}${ref}, ${h.cause.expiry ? `until ${h.cause.expiry}` : 'indefinite'})`);
    }
  }
  if (result.taken_back.length > 0) {
    lines.push(`  ${takeBack}at the next full moderation pass, privileges the wiki no longer vouches for:`);
    for (const t of result.taken_back) lines.push(`${' '.repeat(14)}${t.kind === 'level' ? `power level ${t.level}` : 'membership (gated room)'} of ${t.user_id} in ${t.room_id}`);
  }
  return `${lines.join('\n')}\n`;
}
