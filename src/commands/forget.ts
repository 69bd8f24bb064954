// `forget`: removes a person's personal data (privacy/forget.ts). Destructive and not undoable,
// so by default it only shows what it would do; `--yes` does it.
import { userInfo } from 'node:os';
import type { Writable } from 'node:stream';
import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { forgetPerson, type ForgetResult } from '../privacy/forget.ts';
import { openMigratedDatabase } from './common.ts';

export interface ForgetCommand {
  config: Config;
  log: Logger;
  who: string;
  /** Do it; without it, a dry run. */
  yes: boolean;
  /** Who is doing it, for the audit; default the operating-system user. */
  by?: string | undefined;
  out?: Writable;
}

/** Exit codes: 0 done (or shown), 1 nobody matches. */
export async function runForget(command: ForgetCommand): Promise<number> {
  const out = command.out ?? process.stdout;
  const by = command.by?.trim() || `${userInfo().username} (command line)`;
  const db = await openMigratedDatabase(command.config, command.log);
  let result: ForgetResult | undefined;
  try {
    result = await forgetPerson({ db, config: command.config }, command.who, { performedBy: by, dryRun: !command.yes });
  } finally {
    await db.close();
  }
  if (!result) {
    out.write(`no account matches "${command.who}"\n`);
    return 1;
  }
  out.write(describe(result));
  if (result.dryRun) out.write(`\nNothing was changed. Run again with --yes to forget ${result.person.username}; it cannot be undone.\n`);
  else command.log.info({ opaqueId: result.opaqueId, by }, 'forgot a person');
  return 0;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function describe(result: ForgetResult): string {
  const { person, erased, audit } = result;
  const [erase, keep, handOver, takeBack] = (result.dryRun ? ['erase', 'keep', 'hand over', 'take back'] : ['erased', 'kept', 'handed over', 'taken back']).map((v) => v.padEnd(12));
  const lines = [
    result.dryRun
      ? `Dry run: forgetting ${person.username} (central user id ${person.centralId} on ${person.wiki}; ${person.matrixIds.join(', ')}) would:`
      : `Forgot ${person.username} (central user id ${person.centralId} on ${person.wiki}; ${person.matrixIds.join(', ')}):`,
    `  ${erase}the account (username, display name, localpart, Matrix ID), ${plural(erased.wikiProfiles, 'cached wiki profile')} (groups, edit count, email),`,
    `${' '.repeat(14)}${plural(erased.signIns, 'sign-in')}, ${plural(erased.providerRecords, 'session, grant or token', 'sessions, grants and tokens')}, ${plural(erased.pendingLogouts, 'pending logout')}, ${plural(erased.sessionEnds, 'session-end record')}`,
    `  ${keep}${plural(audit.reKeyed, 'audit entry', 'audit entries')} under ${result.dryRun ? 'a new opaque id' : result.opaqueId}, names removed; ${plural(audit.mentionsRemoved, 'mention')} elsewhere removed`,
  ];
  if (result.handedOver.length > 0) {
    lines.push(`  ${handOver}sanctions that stay in Matrix; the service no longer lifts them, so a moderator does when they end:`);
    for (const h of result.handedOver) {
      const what = h.kind === 'ban' ? `ban of ${h.userId} in ${h.roomId}` : h.kind === 'policy_rule' ? `policy rule against ${h.userId} in ${h.roomId}` : `suspension of ${h.userId}`;
      const ref = h.cause.blockId !== null ? `, block #${h.cause.blockId}` : '';
      lines.push(`${' '.repeat(14)}${what} (${h.cause.kind.replace(/_/g, ' ')}${ref}, ${h.cause.expiry ? `until ${h.cause.expiry}` : 'indefinite'})`);
    }
  }
  if (result.takenBack.length > 0) {
    lines.push(`  ${takeBack}at the next full moderation pass, privileges the wiki no longer vouches for:`);
    for (const t of result.takenBack) lines.push(`${' '.repeat(14)}${t.kind === 'level' ? `power level ${t.level}` : 'membership (gated room)'} of ${t.userId} in ${t.roomId}`);
  }
  return `${lines.join('\n')}\n`;
}
