// The one way the service reaches the homeserver. Moderation reads a whole room with one request
// (`roomSnapshot`), decides, then writes through the membership and state calls below; the
// real implementation (sdk-gateway.ts) retries and honours rate limits, the dry-run wrapper
// (dry-run.ts) lets reads through and only records writes.

export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';

export interface BanInfo {
  reason?: string;
  /** Who placed the ban: lets the reconciler leave bans that human moderators placed alone. */
  sender: string;
}

/** `m.room.power_levels` content as the room holds it; absent keys take the spec's defaults. */
export interface PowerLevelsContent {
  users?: Record<string, number>;
  users_default?: number;
  events?: Record<string, number>;
  events_default?: number;
  state_default?: number;
  ban?: number;
  kick?: number;
  invite?: number;
  redact?: number;
  notifications?: Record<string, number>;
  [key: string]: unknown;
}

export interface RoomSnapshot {
  roomId: string;
  /** Every user with a membership event, whatever its state (`leave` included). */
  members: Map<string, Membership>;
  bans: Map<string, BanInfo>;
  /** The full content, `{}` when the room has no power levels event (then the spec defaults apply). */
  powerLevels: PowerLevelsContent;
  /**
   * Room v12 and later (and the `org.matrix.hydra.*` test versions): the create event's sender
   * plus `additional_creators`. They have infinite power and must not be listed in
   * `powerLevels.users`. Undefined for older room versions, where creators have no special rank.
   */
  creators?: string[];
  roomVersion: string;
  botUserId: string;
  /**
   * `m.policy.rule.user` state by state key, content as found; `{}` is a withdrawn rule, so a
   * rule withdrawn or changed by hand is seen like any other state. Undefined from a gateway
   * that does not read them; the executor then takes its own records as the published rules.
   */
  policyRules?: Map<string, Record<string, unknown>>;
}

/**
 * What a write did. `unchanged`: the homeserver refused because the target was already in the
 * desired state (e.g. unbanning someone not banned), which counts as success. `applied` is what
 * the homeserver accepted; it does not prove a change (Synapse accepts a ban of a banned user).
 * `dry_run`: nothing was sent.
 */
export type WriteOutcome = 'applied' | 'unchanged' | 'dry_run';

/** A user as the Synapse admin API sees them. */
export interface UserStatus {
  userId: string;
  admin: boolean;
  suspended: boolean;
  locked: boolean;
  deactivated: boolean;
  /** The profile's display name; null when none is set. */
  displayName: string | null;
}

export interface MatrixGateway {
  /** The bot's own user id (asked once, then remembered). */
  whoami(): Promise<string>;
  /** Members, bans, power levels and creators of a room, from one request for its full state. */
  roomSnapshot(roomId: string): Promise<RoomSnapshot>;
  /** The room id an alias points at, or undefined when the alias does not exist. */
  resolveAlias(alias: string): Promise<string | undefined>;
  /**
   * The direct children of a space (its `m.space.child` events with a `via`), one request; the
   * bot must be in the space. Sub-spaces are among them: the caller recurses if it wants.
   */
  spaceChildren(spaceId: string): Promise<string[]>;

  ban(roomId: string, userId: string, reason: string): Promise<WriteOutcome>;
  unban(roomId: string, userId: string, reason?: string): Promise<WriteOutcome>;
  invite(roomId: string, userId: string, reason?: string): Promise<WriteOutcome>;
  kick(roomId: string, userId: string, reason: string): Promise<WriteOutcome>;
  /** Replaces the whole power levels event: read-modify-write, all of a room's changes at once. */
  setPowerLevels(roomId: string, content: PowerLevelsContent): Promise<WriteOutcome>;
  /** Any state event, e.g. `m.policy.rule.user`; `{}` content removes a policy rule. */
  sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<WriteOutcome>;
  /** An `m.notice`; a retried send reuses its transaction id, so it never posts twice. */
  sendNotice(roomId: string, text: string, html?: string): Promise<WriteOutcome>;

  /** Synapse admin API (the bot must be a server admin): suspend or unsuspend an account. */
  suspend(userId: string, suspended: boolean): Promise<WriteOutcome>;
  /** Synapse admin API: lock or unlock an account (a locked one gets M_USER_LOCKED for every request). */
  setLocked(userId: string, locked: boolean): Promise<WriteOutcome>;
  /**
   * Synapse admin API: logs out every device of the user (their access tokens stop working);
   * `unchanged` when they had none, or the homeserver has no such user.
   */
  logoutDevices(userId: string): Promise<WriteOutcome>;
  /** Synapse admin API: the account's state, or undefined when the homeserver has no such user. */
  userStatus(userId: string): Promise<UserStatus | undefined>;
  /**
   * Synapse admin API: the Matrix ID the homeserver gave the user it knows by this external id
   * of this auth provider (for OIDC, `oidc-<idp_id>` and the `sub`), or undefined when no user has
   * that external id yet (never signed in). Synapse re-escapes and suffixes localparts, so this,
   * not the localpart we proposed, is the user's real ID.
   */
  userIdForExternalId(authProvider: string, externalId: string): Promise<string | undefined>;
  /** Synapse admin API: sets a user's display name. */
  setDisplayName(userId: string, displayName: string): Promise<WriteOutcome>;

  /** HTTP requests sent so far, retries included. */
  readonly requestCount: number;
}
