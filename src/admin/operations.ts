// What admins do, for the pages and the API alike. Nothing here changes Matrix: a retry, a preview
// and its application are requests the leading worker runs (moderation/requests.ts); a localpart
// override is a row the first sign-in takes. Each says who asked, and overrides are audited.
import { AppError } from '../http/errors.ts';
import { accountRepository, wikiIdOf } from '../compose.ts';
import type { LocalpartOverride } from '../identity/accounts.ts';
import { ModerationAuditLog } from '../moderation/records.ts';
import { ModerationRequestStore, type ModerationRequest } from '../moderation/requests.ts';
import type { ReadDeps } from './read.ts';

/** Reconciles the person an action was for again, now (the action failed, or a moderator fixed the room). */
export async function requestRetry({ db }: ReadDeps, actionId: string, actor: string): Promise<ModerationRequest> {
  const action = await new ModerationAuditLog(db).get(actionId);
  if (!action) throw new AppError(404, 'not_found', `there is no action ${actionId}`);
  if (!action.userId) throw new AppError(409, 'not_retryable', `action ${actionId} (${action.kind}) is not about one person; a full pass repairs it`);
  return new ModerationRequestStore(db).create('retry', actor, { userId: action.userId });
}

/** Asks the leader for a dry-run plan of a full pass. */
export function requestPlan({ db }: ReadDeps, actor: string): Promise<ModerationRequest> {
  return new ModerationRequestStore(db).create('plan', actor, {});
}

/** Asks the leader to run a full pass if it would do exactly what the plan `planId` showed. */
export async function requestApply({ db }: ReadDeps, planId: string, actor: string): Promise<ModerationRequest> {
  const requests = new ModerationRequestStore(db);
  const plan = await requests.get(planId);
  if (!plan || plan.kind !== 'plan') throw new AppError(404, 'not_found', `there is no plan ${planId}`);
  if (plan.state !== 'done' || !plan.result || !('digest' in plan.result)) throw new AppError(409, 'plan_not_ready', `plan ${planId} is ${plan.state}: apply a plan once it is done`);
  return requests.create('apply', actor, { digest: plan.result.digest });
}

/** Chooses the localpart of a wiki account that has not signed in yet; audited with who chose it. */
export async function setOverride({ config, db }: ReadDeps, username: string, localpart: string, actor: string): Promise<LocalpartOverride> {
  const override = await accountRepository(db, config).overrideLocalpart(wikiIdOf(config), username, localpart, actor);
  await auditOverride({ config, db }, override.username, { localpart: override.localpart }, actor);
  return override;
}

export async function dropOverride({ config, db }: ReadDeps, username: string, actor: string): Promise<LocalpartOverride> {
  const dropped = await accountRepository(db, config).dropOverride(wikiIdOf(config), username);
  if (!dropped) throw new AppError(404, 'not_found', `no localpart is chosen for ${username}`);
  await auditOverride({ config, db }, dropped.username, { localpart: null, was: dropped.localpart }, actor);
  return dropped;
}

async function auditOverride({ config, db }: ReadDeps, username: string, change: Record<string, unknown>, actor: string): Promise<void> {
  const at = new Date();
  await new ModerationAuditLog(db).append([
    {
      at,
      passId: `admin-${at.toISOString()}`,
      dryRun: false,
      kind: 'localpart_override',
      roomId: null,
      userId: null,
      cause: null,
      outcome: 'applied',
      error: null,
      detail: { wiki: wikiIdOf(config), username, ...change, by: actor },
    },
  ]);
}
