// The data moderation mirroring decides on: what the wiki says (input to `policy`), what Matrix
// should look like (its output), what Matrix looks like (room snapshots), what the service did
// before (ownership records), and what to do next (actions). All plain data, so the decisions
// are pure functions and storage, gateway and executor can be written and tested apart.
import type { Account } from '../identity/accounts.ts';
import type { GlobalBlock, WikiBlock } from '../wiki/action-api-results.ts';
import type { Membership, PowerLevelsContent } from '../matrix/gateway.ts';

// ---------------------------------------------------------------------------------------------
// Wiki state (input to policy)

export type MappedAccount = Pick<Account, 'wiki' | 'centralId' | 'username' | 'localpart'> & {
  /** The Matrix ID the homeserver reports for the account, when known (see matrix-ids.ts). */
  matrixUserId?: string | undefined;
};

/** A CentralAuth lock; locks have no expiry. The log fields come from `globalauth/setstatus` when known. */
export interface GlobalLock {
  logId: number | null;
  by: string | null;
  reason: string;
  timestamp: Date | null;
  /** The global account is hidden or suppressed: its details must not be published. */
  hidden: boolean;
}

/** Everything the wiki says about one account that has a Matrix ID. */
export interface WikiUserState {
  account: MappedAccount;
  /** Active blocks on the wiki (list=blocks); a user may have several. */
  blocks: WikiBlock[];
  /** Global blocks of the account (list=globalblocks). */
  globalBlocks: GlobalBlock[];
  lock: GlobalLock | null;
  /** Explicit local groups on the wiki. */
  groups: string[];
  globalGroups: string[];
}

export interface WikiState {
  /** The wiki the state was read from, as named in reasons and audit records (e.g. `meta.wikimedia.org`). */
  wiki: string;
  users: WikiUserState[];
  /**
   * True when `users` holds every mapped account (a full pass): anything the service did for an
   * account not listed is then undone. False when only some accounts changed: the others are
   * left as they are.
   */
  complete: boolean;
}

// ---------------------------------------------------------------------------------------------
// Causes: why the service does something, kept with every action and record for the audit.

export type CauseKind = 'block' | 'partial_block' | 'global_block' | 'global_lock' | 'group' | 'global_group';

export interface WikiCause {
  kind: CauseKind;
  wiki: string;
  /** Block id (local or global); null for locks and groups. */
  blockId: number | null;
  /** The log entry (lock, rights change) when known. */
  logId: number | null;
  /** Who blocked or locked; null when unknown or hidden. */
  by: string | null;
  reason: string;
  timestamp: Date | null;
  /** null: never expires (or not applicable). */
  expiry: Date | null;
  /** The group, for group causes. */
  group: string | null;
  /** Suppressed: say that something happened, never who or why. */
  hidden: boolean;
}

// ---------------------------------------------------------------------------------------------
// Desired Matrix state (output of policy)

export interface DesiredBan {
  reason: string;
  cause: WikiCause;
}

export interface DesiredLevel {
  level: number;
  cause: WikiCause;
}

export interface DesiredRoom {
  roomId: string;
  /** Users to be banned; undefined when the service does not manage bans in this room. */
  bans: ReadonlyMap<string, DesiredBan> | undefined;
  /** Mirrored power levels; undefined when the service does not manage levels here. */
  levels: ReadonlyMap<string, DesiredLevel> | undefined;
  /** Members of a gated room; undefined when the room is not gated. */
  members: ReadonlyMap<string, WikiCause> | undefined;
}

export const POLICY_RULE_USER = 'm.policy.rule.user';

export interface PolicyRuleContent {
  entity: string;
  recommendation: 'm.ban';
  reason: string;
}

export interface DesiredRule {
  entity: string;
  content: PolicyRuleContent;
  cause: WikiCause;
}

export interface DesiredState {
  /** Whose Matrix state this describes: everyone (a full pass) or these Matrix IDs only. */
  scope: 'all' | ReadonlySet<string>;
  rooms: DesiredRoom[];
  suspensions: ReadonlyMap<string, WikiCause>;
  /** How new suspensions are made (`moderation.suspend.measure`); `suspend` when absent. */
  suspendMeasure?: SuspendMeasure;
  /** People whose sessions a sanction ends (`moderation.sessions`), by Matrix ID, with their central id. */
  sessionEnds: ReadonlyMap<string, { centralId: string; cause: WikiCause }>;
  /** Rules by state key, and the bots that read them (`moderation.policy_list.subscribers`), who belong in the room. */
  policyList: { roomId: string; rules: ReadonlyMap<string, DesiredRule>; subscribers?: readonly string[] } | undefined;
}

// ---------------------------------------------------------------------------------------------
// Actual Matrix state (read from the homeserver)

// The homeserver's vocabulary, shared with the gateway that reads it.
export type { Membership, PowerLevelsContent } from '../matrix/gateway.ts';

export interface RoomSnapshot {
  roomId: string;
  members: ReadonlyMap<string, Membership>;
  bans: ReadonlyMap<string, { reason?: string | undefined; sender: string }>;
  /** The full content, so a write can keep everything it does not change. */
  powerLevels: PowerLevelsContent;
  /** Room v12 and later: creators have infinite power and must not appear in `users`. */
  creators?: readonly string[] | undefined;
  botUserId: string;
  /** `m.policy.rule.user` state by state key (policy room only); `{}` content means withdrawn. */
  policyRules?: ReadonlyMap<string, Record<string, unknown>> | undefined;
}

export interface ActualState {
  rooms: ReadonlyMap<string, RoomSnapshot>;
  /**
   * Users the homeserver reports as suspended. Omit when unknown: the suspension records are then
   * taken as the truth.
   */
  suspended?: ReadonlySet<string> | undefined;
}

// ---------------------------------------------------------------------------------------------
// Ownership records: what the service did, so it only ever undoes its own doing.

export interface BanRecord {
  roomId: string;
  userId: string;
  cause: WikiCause;
}

export interface LevelRecord {
  roomId: string;
  userId: string;
  /** The level the service set; a different level found later was set by hand. */
  level: number;
  cause: WikiCause;
}

export interface InviteRecord {
  roomId: string;
  userId: string;
  cause: WikiCause;
}

export interface PolicyRuleRecord {
  roomId: string;
  stateKey: string;
  entity: string;
  cause: WikiCause;
}

/** Synapse's suspension (read-only account) or its lock (nothing at all). */
export type SuspendMeasure = 'suspend' | 'lock';

export interface SuspensionRecord {
  userId: string;
  cause: WikiCause;
  /** The account was locked rather than suspended; lifted the same way it was made. */
  measure?: 'lock';
}

/** The service ended this person's sessions for this cause; while it stands, they get no new tokens. */
export interface SessionEndRecord {
  userId: string;
  cause: WikiCause;
}

export interface OwnershipRecords {
  bans: readonly BanRecord[];
  levels: readonly LevelRecord[];
  invites: readonly InviteRecord[];
  policyRules: readonly PolicyRuleRecord[];
  suspensions: readonly SuspensionRecord[];
  sessionEnds: readonly SessionEndRecord[];
}

export type RecordRef =
  | { type: 'ban' | 'level' | 'invite'; roomId: string; userId: string }
  | { type: 'policy_rule'; roomId: string; stateKey: string }
  | { type: 'suspension'; userId: string }
  | { type: 'session_end'; userId: string };

// ---------------------------------------------------------------------------------------------
// Actions (output of reconcile)

export interface LevelChange {
  userId: string;
  /** The user's entry in `users` before; null when absent. */
  from: number | null;
  /** The entry after; null removes it (the user falls back to `users_default`). */
  to: number | null;
  cause: WikiCause;
}

export type ReportProblem = 'lacks_power' | 'hand_set_level' | 'hand_set_ban' | 'room_unavailable';

/** Something an admin should know; no Matrix change. */
export interface Report {
  kind: 'report';
  problem: ReportProblem;
  roomId: string | null;
  userIds: string[];
  message: string;
  /** For `lacks_power`: what could not be done. */
  wanted?: 'ban' | 'unban' | 'kick' | 'invite' | 'set_power_levels' | 'publish_policy' | 'retract_policy';
}

export type Action =
  | { kind: 'ban'; roomId: string; userId: string; reason: string; cause: WikiCause }
  /** `cause` is the recorded cause of the ban being lifted. */
  | { kind: 'unban'; roomId: string; userId: string; reason: string; cause: WikiCause }
  /** One write per room per pass; `content` is the whole new `m.room.power_levels` content. */
  | { kind: 'set_power_levels'; roomId: string; content: PowerLevelsContent; changes: LevelChange[] }
  | { kind: 'invite'; roomId: string; userId: string; cause: WikiCause }
  /** A bot that reads the policy list, invited to its room because the config names it (no wiki cause, no record). */
  | { kind: 'invite_subscriber'; roomId: string; userId: string }
  | { kind: 'kick'; roomId: string; userId: string; reason: string; cause: WikiCause }
  | { kind: 'suspend'; userId: string; cause: WikiCause; measure?: 'lock' }
  | { kind: 'unsuspend'; userId: string; cause: WikiCause; measure?: 'lock' }
  /** Revokes the person's tokens and sessions at the service and logs out every device on the homeserver. */
  | { kind: 'end_sessions'; userId: string; centralId: string; cause: WikiCause }
  | { kind: 'publish_policy'; roomId: string; eventType: typeof POLICY_RULE_USER; stateKey: string; content: PolicyRuleContent; cause: WikiCause }
  /** Sends `{}` under the same state key. */
  | { kind: 'retract_policy'; roomId: string; eventType: typeof POLICY_RULE_USER; stateKey: string; cause: WikiCause }
  /** A record no longer describes anything the service owns (a person changed it, or it is gone); drop it. */
  | { kind: 'forget'; record: RecordRef; why: string }
  | Report;

export type ActionKind = Action['kind'];
