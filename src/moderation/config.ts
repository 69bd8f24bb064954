// What moderation mirroring does, as a schema fragment the main configuration embeds (under
// `moderation`). Defaults are the cautious ones: only sitewide sanctions ban, nobody is suspended,
// and group levels stay below the level the bot customarily holds (100), so it can grant and
// revoke them.
import { z } from 'zod';

const roomId = z.string().regex(/^!.+/, 'expected a room id such as !abc:example.org (not an alias)');

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
    room_id: roomId.describe('The room (or space) id.'),
    bans: z
      .enum(['all', 'global', 'none'])
      .default('all')
      .describe('Which sanctions ban here: `all` (local blocks, global blocks and locks), `global` (global blocks and locks only), or `none`.'),
    power_levels: z.boolean().default(true).describe('Mirror wiki groups into power levels here.'),
    group_levels: groupLevels.optional().describe('Group levels for this room only, replacing the top-level `group_levels` entirely.'),
  })
  .describe('A room or space whose bans and power levels mirror the wiki.');

const gatedRoom = z
  .strictObject({
    room_id: roomId.describe('The room (or space) id; make it invite-only.'),
    groups: groupNames('Local wiki groups whose members are invited.'),
    global_groups: groupNames('Global (CentralAuth) groups whose members are invited.'),
  })
  .refine((room) => room.groups.length + room.global_groups.length > 0, { message: 'a gated room needs at least one group in `groups` or `global_groups`' })
  .describe('A members-only room: members of the groups are invited, and those the service invited are removed when they leave the groups (people invited by hand are left alone).');

const policyList = z
  .strictObject({
    room_id: roomId.describe('The policy room; the bot needs the power to send `m.policy.rule.user` state there.'),
    bans: z
      .enum(['all', 'global'])
      .default('all')
      .describe('Which bans to publish: `all` mirrored bans, or only those from `global` blocks and locks.'),
  })
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
      })
      .default({ global_lock: false, global_block: false })
      .describe('Homeserver-level suspension, lifted when the sanction ends (only suspensions this service made).'),
    group_levels: groupLevels.default({ local: DEFAULT_LOCAL_LEVELS, global: DEFAULT_GLOBAL_LEVELS }),
    rooms: z.array(managedRoom).default([]).describe('Rooms and spaces whose bans and power levels mirror the wiki.'),
    gated_rooms: z.array(gatedRoom).default([]).describe('Members-only rooms for wiki groups.'),
    policy_list: policyList.optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    for (const [i, room] of config.rooms.entries()) {
      if (seen.has(room.room_id)) ctx.addIssue({ code: 'custom', path: ['rooms', i, 'room_id'], message: `${room.room_id} is listed twice` });
      seen.add(room.room_id);
    }
    const gated = new Set<string>();
    for (const [i, room] of config.gated_rooms.entries()) {
      if (gated.has(room.room_id)) ctx.addIssue({ code: 'custom', path: ['gated_rooms', i, 'room_id'], message: `${room.room_id} is listed twice` });
      gated.add(room.room_id);
    }
  })
  .describe('Moderation mirroring: which wiki sanctions and groups become bans, suspensions, power levels, room memberships and policy rules.');

export type ModerationConfigInput = z.input<typeof moderationConfigSchema>;
export type ModerationConfig = z.output<typeof moderationConfigSchema>;
