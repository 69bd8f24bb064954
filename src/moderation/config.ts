// What moderation mirroring does, as a schema fragment the main configuration embeds (under
// `moderation`). Defaults are the cautious ones: only sitewide sanctions ban, nobody is suspended,
// and group levels stay below the level the bot customarily holds (100), so it can grant and
// revoke them.
import { z } from 'zod';

const roomId = z.string().regex(/^!.+/, 'expected a room id such as !abc:example.org (name a room by its alias with `alias`)');
const roomAlias = z.string().regex(/^#[^:]+:.+/, 'expected a room alias such as #chat:example.org');
const userId = z.string().regex(/^@[^:]+:.+/, 'expected a Matrix ID such as @ircbridge:example.org');
const spaceRef = z.string().regex(/^(!.+|#[^:]+:.+)$/, 'expected a space id (!abc:example.org) or alias (#space:example.org)');

/** The keys that can name a room; an entry uses exactly one of those it offers. */
type RoomKey = 'room_id' | 'alias' | 'space';

function exactlyOneOf(keys: readonly RoomKey[]) {
  return (entry: Partial<Record<RoomKey, string>>, ctx: z.RefinementCtx) => {
    const given = keys.filter((key) => entry[key] !== undefined);
    if (given.length === 1) return;
    const list = keys.map((key) => `\`${key}\``).join(', ').replace(/, ([^,]+)$/, ' or $1');
    ctx.addIssue({ code: 'custom', path: given.length > 1 ? [given[1]!] : [], message: `name the room with exactly one of ${list}` });
  };
}

/** Matrix power levels are integers; a mirrored group level only makes sense as a promotion. */
const level = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

const groupNames = (what: string) => z.array(z.string().min(1)).default([]).describe(what);

const levelMap = (what: string, def: Record<string, number>) =>
  z.record(z.string().min(1), level).default(def).describe(what);

const DEFAULT_LOCAL_LEVELS = { sysop: 50, bureaucrat: 90 };
const DEFAULT_GLOBAL_LEVELS = { steward: 90 };

const groupLevels = z
  .strictObject({
    local: levelMap('Local wiki group → power level, e.g. `{sysop: 50, bureaucrat: 90}`.', DEFAULT_LOCAL_LEVELS),
    global: levelMap('Global (CentralAuth) group → power level, e.g. `{steward: 90}`.', DEFAULT_GLOBAL_LEVELS),
  })
  .describe('Power level granted for membership in a wiki group; a user in several groups gets the highest. Levels at or above the bot\'s own are never granted (they could not be revoked); they are reported instead.');

const managedRoom = z
  .strictObject({
    room_id: roomId.optional().describe('The room (or space) id.'),
    alias: roomAlias.optional().describe('The room\'s alias, resolved to its room id at every pass.'),
    space: spaceRef
      .optional()
      .describe('A space (id or alias): every room it lists as a child (`m.space.child`) at the time of the pass, direct children only; the space itself is managed only if listed too. The bot must be in the space.'),
    bans: z
      .enum(['all', 'global', 'none'])
      .default('all')
      .describe('Which sanctions ban here: `all` (local blocks, global blocks and locks), `global` (global blocks and locks only), or `none`.'),
    power_levels: z.boolean().default(true).describe('Mirror wiki groups into power levels here.'),
    group_levels: groupLevels.optional().describe('Group levels for this room only, replacing the top-level `group_levels` entirely.'),
  })
  .superRefine(exactlyOneOf(['room_id', 'alias', 'space']))
  .describe('A room, or every room of a space, whose bans and power levels mirror the wiki.');

const gatedRoom = z
  .strictObject({
    room_id: roomId.optional().describe('The room (or space) id; make it invite-only.'),
    alias: roomAlias.optional().describe('The room\'s alias, instead of `room_id`.'),
    groups: groupNames('Local wiki groups whose members are invited.'),
    global_groups: groupNames('Global (CentralAuth) groups whose members are invited.'),
  })
  .refine((room) => room.groups.length + room.global_groups.length > 0, { message: 'a gated room needs at least one group in `groups` or `global_groups`' })
  .superRefine(exactlyOneOf(['room_id', 'alias']))
  .describe('A members-only room: members of the groups are invited, and those the service invited are removed when they leave the groups (people invited by hand are left alone).');

const policyList = z
  .strictObject({
    room_id: roomId.optional().describe('The policy room; the bot needs the power to send `m.policy.rule.user` state there.'),
    alias: roomAlias.optional().describe('The policy room\'s alias, instead of `room_id`.'),
    bans: z
      .enum(['all', 'global'])
      .default('all')
      .describe('Which bans to publish: `all` mirrored bans, or only those from `global` blocks and locks.'),
    subscribers: z
      .array(userId)
      .optional()
      .describe('Matrix IDs of bots that read the list, such as the IRC bridge\'s bot (which joins the rooms of its `banLists` itself, so it needs an invitation unless the room is public) or a moderation bot. The worker invites each one not in the room at every full pass, and audits it; the bot needs the power to invite there.'),
  })
  .superRefine(exactlyOneOf(['room_id', 'alias']))
  .describe('A published Matrix policy list (MSC2313): an `m.policy.rule.user` / `m.ban` rule for every banned Matrix ID, withdrawn when the ban ends.');

export const moderationConfigSchema = z
  .strictObject({
    partial_blocks: z
      .enum(['ignore', 'ban'])
      .default('ignore')
      .describe('What a partial block (one limited to some pages, namespaces or actions) does in Matrix: nothing (`ignore`), or the same as a sitewide block (`ban`).'),
    global_blocks: z.boolean().default(true).describe('Ban accounts that are globally blocked (GlobalBlocking).'),
    global_locks: z.boolean().default(true).describe('Ban accounts that are globally locked (CentralAuth).'),
    suspend: z
      .strictObject({
        global_lock: z.boolean().default(false).describe('Suspend the Matrix account (Synapse admin API) while the wiki account is globally locked.'),
        global_block: z.boolean().default(false).describe('Suspend the Matrix account while the wiki account is globally blocked.'),
        measure: z
          .enum(['suspend', 'lock'])
          .default('suspend')
          .describe('What a suspension is on Synapse: `suspend` (the account can read and leave rooms, not send, join or invite; `PUT /_synapse/admin/v1/suspend/<id>`) or `lock` (every request is refused with M_USER_LOCKED; `PUT /_synapse/admin/v2/users/<id>` with `locked: true`). A suspension keeps the measure it was made with until it is lifted. With `matrix.mas` both lock the MAS user.'),
      })
      .default({ global_lock: false, global_block: false, measure: 'suspend' })
      .describe('Homeserver-level suspension, lifted when the sanction ends (only suspensions this service made).'),
    sessions: z
      .strictObject({
        global_lock: z.boolean().default(true).describe('A global lock ends the person\'s sessions.'),
        global_block: z.boolean().default(false).describe('A global block ends them.'),
        sitewide_block: z.boolean().default(false).describe('A sitewide block on this wiki ends them.'),
      })
      .default({ global_lock: true, global_block: false, sitewide_block: false })
      .describe('Sanctions that end the person\'s sessions: everything this service issued to them is revoked (sessions, grants, access and refresh tokens), each relying party with a `backchannel_logout_uri` is sent a Back-Channel Logout token, and through the Synapse admin API every Matrix device is logged out. Once per sanction; while it lasts the service refuses the person\'s refresh tokens, userinfo and new sign-ins.'),
    group_levels: groupLevels.default({ local: DEFAULT_LOCAL_LEVELS, global: DEFAULT_GLOBAL_LEVELS }),
    rooms: z
      .array(managedRoom)
      .default([])
      .describe('Rooms whose bans and power levels mirror the wiki, each named by `room_id`, by `alias`, or as every room of a `space` (its direct `m.space.child` rooms, not the space itself). Aliases and spaces are resolved at every pass; a room also named directly takes the settings of its own entry.'),
    gated_rooms: z.array(gatedRoom).default([]).describe('Members-only rooms for wiki groups, each named by `room_id` or `alias`.'),
    policy_list: policyList.optional(),
  })
  .superRefine((config, ctx) => {
    listedOnce(config.rooms, 'rooms', ['room_id', 'alias', 'space'], ctx);
    listedOnce(config.gated_rooms, 'gated_rooms', ['room_id', 'alias'], ctx);
  })
  .describe('Moderation mirroring: which wiki sanctions and groups become bans, suspensions, power levels, room memberships and policy rules.');

/** The same room id, alias or space twice in one list is a mistake; an alias naming a listed room is only found at run time. */
function listedOnce(entries: readonly Partial<Record<RoomKey, string>>[], list: string, keys: readonly RoomKey[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    for (const key of keys) {
      const name = entry[key];
      if (name === undefined) continue;
      if (seen.has(`${key}:${name}`)) ctx.addIssue({ code: 'custom', path: [list, i, key], message: `${name} is listed twice` });
      seen.add(`${key}:${name}`);
    }
  }
}

export type ModerationConfigInput = z.input<typeof moderationConfigSchema>;
export type ModerationConfig = z.output<typeof moderationConfigSchema>;
