// Actions in words, one line each, as a person reads them: the `sync` command's output, the
// admin pages' preview and the admin API's plans.
import { describeCause } from './policy.ts';
import type { Action } from './types.ts';

/** One line per action, as a person reads it. */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'ban':
    case 'unban':
    case 'kick':
      return `${action.kind.padEnd(8)} ${action.userId} in ${action.roomId}: ${action.reason}`;
    case 'invite':
      return `${'invite'.padEnd(8)} ${action.userId} to ${action.roomId} (${describeCause(action.cause)})`;
    case 'invite_subscriber':
      return `${'invite'.padEnd(8)} ${action.userId} to ${action.roomId} (reads the policy list)`;
    case 'set_power_levels':
      return `${'levels'.padEnd(8)} ${action.roomId}: ${action.changes.map((c) => `${c.userId} ${c.from ?? 'default'} → ${c.to ?? 'default'}`).join(', ')}`;
    case 'suspend':
    case 'unsuspend':
      return `${(action.measure ? (action.kind === 'suspend' ? 'lock' : 'unlock') : action.kind).padEnd(8)} ${action.userId} (${describeCause(action.cause)})`;
    case 'end_sessions':
      return `${'logout'.padEnd(8)} ${action.userId}: every session and device (${describeCause(action.cause)})`;
    case 'publish_policy':
      return `${'rule'.padEnd(8)} ${action.content.recommendation} ${action.content.entity} in ${action.roomId}: ${action.content.reason}`;
    case 'retract_policy':
      return `${'unrule'.padEnd(8)} ${action.stateKey} in ${action.roomId}`;
    case 'forget':
      return `${'forget'.padEnd(8)} ${action.record.type} ${'roomId' in action.record ? `${action.record.roomId} ` : ''}${'userId' in action.record ? action.record.userId : action.record.stateKey}: ${action.why}`;
    case 'report':
      return `${'report'.padEnd(8)} ${action.message}`;
  }
}
