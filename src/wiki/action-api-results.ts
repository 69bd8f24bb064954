// The Action API answers the service reads, parsed strictly (formatversion=2) into typed values.
//
// Facts these schemas encode, as seen on MediaWiki 1.39 and in the CentralAuth / GlobalBlocking
// sources:
// - An infinite expiry reads `infinity` in list=blocks and logevents but `infinite` in
//   list=users' blockinfo; both become `null` (never expires).
// - list=blocks `restrictions` is `[]` for a sitewide block (and a partial block without any) but
//   `{pages?, namespaces?, actions?}` for a partial one; `partial` is the flag that decides.
// - list=users `groups` includes the implicit groups (`*`, `user`, `autoconfirmed`…); we ask for
//   `implicitgroups` too and strip them, so that only granted groups remain.
// - Block log params: `{duration, flags, sitewide, expiry?, restrictions?}` (MediaWiki fills in
//   defaults for old entries; `expiry` only when the duration is finite); unblock has `{}`.
//   Rights log params: `{oldgroups, newgroups, oldmetadata, newmetadata}`.
// - CentralAuth `meta=globaluserinfo`: `missing` when there is no global account (or it is hidden
//   from us), else `locked`/`hidden` only when true, `merged[].groups` only when not empty,
//   `merged[].blocked = {expiry, reason}` only when blocked.
// - GlobalBlocking `list=globalblocks`: `id` may come as a string, `anononly` is `""` when set,
//   `target` was called `address` before 2024.
import { z } from 'zod';

export const IMPLICIT_GROUPS: readonly string[] = ['*', 'user', 'autoconfirmed'];

/** The groups someone was put in, without the ones every (confirmed) account has. */
export const explicitGroups = (groups: readonly string[]): string[] => groups.filter((g) => !IMPLICIT_GROUPS.includes(g));

const INFINITE_EXPIRIES = new Set(['infinite', 'infinity', 'indefinite', 'never']);
const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;
const MW_TIMESTAMP = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/;

/** An ISO 8601 timestamp as the API formats them (TS_ISO_8601), or MediaWiki's 14-digit form. */
function parseTimestamp(value: string): Date | undefined {
  const mw = MW_TIMESTAMP.exec(value);
  const iso = mw ? `${mw[1]}-${mw[2]}-${mw[3]}T${mw[4]}:${mw[5]}:${mw[6]}Z` : value;
  if (!ISO_TIMESTAMP.test(iso)) return undefined;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const timestamp = z.string().transform((value, ctx) => {
  const date = parseTimestamp(value);
  if (date) return date;
  ctx.addIssue({ code: 'custom', message: `expected an ISO 8601 timestamp, got ${JSON.stringify(value.slice(0, 40))}` });
  return z.NEVER;
});

/** `null` means the thing never expires. */
export const expiry = z.string().transform((value, ctx): Date | null => {
  if (INFINITE_EXPIRIES.has(value)) return null;
  const date = parseTimestamp(value);
  if (date) return date;
  ctx.addIssue({ code: 'custom', message: `expected a timestamp or "infinity", got ${JSON.stringify(value.slice(0, 40))}` });
  return z.NEVER;
});

const int = z.number().int();
const nonNegative = int.nonnegative();
const flag = z.boolean().default(false);
const stringList = z.array(z.string());

/** The user part of a log title (`User:Name`, `User:Name@global`, `Special:Contributions/Name`). */
export function targetOfLogTitle(ns: number, title: string): string {
  const colon = title.indexOf(':');
  let name = colon >= 0 ? title.slice(colon + 1) : title;
  if (ns === -1 && name.includes('/')) name = name.slice(name.indexOf('/') + 1);
  return name.endsWith('@global') ? name.slice(0, -'@global'.length) : name;
}

// ---------------------------------------------------------------------------------------------
// list=blocks

export interface BlockRestrictions {
  pages: { id: number; ns: number; title: string }[];
  namespaces: number[];
  actions: string[];
}

const noRestrictions = (): BlockRestrictions => ({ pages: [], namespaces: [], actions: [] });

const blockRestrictions = z.union([
  z.tuple([]).transform(noRestrictions),
  z
    .object({
      pages: z.array(z.object({ id: nonNegative, ns: int, title: z.string() })).default([]),
      namespaces: z.array(int).default([]),
      actions: stringList.default([]),
    })
    .transform((r): BlockRestrictions => r),
]);

const blockEntry = z.object({
  id: nonNegative,
  // Autoblocks hide their target; they say nothing about an account, so they are dropped.
  user: z.string().optional(),
  userid: nonNegative.optional(),
  by: z.string(),
  timestamp,
  expiry,
  reason: z.string(),
  automatic: flag,
  anononly: flag,
  nocreate: flag,
  autoblock: flag,
  noemail: flag,
  hidden: flag,
  allowusertalk: flag,
  partial: z.boolean(),
  restrictions: blockRestrictions,
});

export interface WikiBlock {
  id: number;
  user: string;
  /** 0 for an IP address or range. */
  userId: number;
  by: string;
  timestamp: Date;
  /** null: never expires. */
  expiry: Date | null;
  reason: string;
  /** False for a partial block, which only keeps the user from `restrictions`. */
  sitewide: boolean;
  restrictions: BlockRestrictions;
  anonOnly: boolean;
  noCreate: boolean;
  autoblock: boolean;
  noEmail: boolean;
  allowUserTalk: boolean;
  /** The block hides the username (suppression); only visible to users with `hideuser`. */
  hidden: boolean;
}

export const blocksAnswer = z.object({
  query: z.object({ blocks: z.array(blockEntry) }),
});

export function toWikiBlocks(entries: z.output<typeof blockEntry>[]): WikiBlock[] {
  const blocks: WikiBlock[] = [];
  for (const b of entries) {
    if (b.automatic || b.user === undefined) continue;
    blocks.push({
      id: b.id,
      user: b.user,
      userId: b.userid ?? 0,
      by: b.by,
      timestamp: b.timestamp,
      expiry: b.expiry,
      reason: b.reason,
      sitewide: !b.partial,
      restrictions: b.partial ? b.restrictions : noRestrictions(),
      anonOnly: b.anononly,
      noCreate: b.nocreate,
      autoblock: b.autoblock,
      noEmail: b.noemail,
      allowUserTalk: b.allowusertalk,
      hidden: b.hidden,
    });
  }
  return blocks;
}

// ---------------------------------------------------------------------------------------------
// list=users&usprop=blockinfo|groups|implicitgroups

const userEntry = z.object({
  // Absent when an id was asked for (`ususerids`) and no visible account has it.
  name: z.string().optional(),
  userid: nonNegative.optional(),
  missing: flag,
  invalid: flag,
  /** Hidden (suppressed) with `hidename`: only readers with `hideuser` see the account at all. */
  hidden: flag,
  groups: stringList.optional(),
  implicitgroups: stringList.optional(),
  blockid: nonNegative.optional(),
  blockedby: z.string().optional(),
  blockreason: z.string().optional(),
  blockedtimestamp: timestamp.optional(),
  blockexpiry: expiry.optional(),
  blockpartial: flag,
  blocknocreate: flag,
  blockanononly: flag,
});

/** The one block list=users reports (the most relevant, when a user has several). */
export interface UserBlockInfo {
  id: number;
  by: string;
  reason: string;
  timestamp: Date | null;
  expiry: Date | null;
  sitewide: boolean;
  noCreate: boolean;
  anonOnly: boolean;
}

export type WikiUser =
  | {
      /** Empty when asked by id. */
      name: string;
      exists: false;
      /** The name is not a valid username. */
      invalid: boolean;
      /** The id asked for (`ususerids`): no account with it is visible, so it is hidden or gone. */
      userId?: number;
    }
  | {
      name: string;
      exists: true;
      userId: number;
      /** Hidden (suppressed); seen only with `hideuser`. */
      hidden: boolean;
      /** Explicitly granted groups only (implicit ones stripped). */
      groups: string[];
      block: UserBlockInfo | null;
    };

export const usersAnswer = z.object({
  query: z.object({ users: z.array(userEntry) }),
});

export function toWikiUsers(entries: z.output<typeof userEntry>[]): WikiUser[] {
  return entries.map((u): WikiUser => {
    if (u.missing || u.invalid || u.userid === undefined || u.name === undefined) {
      return { name: u.name ?? '', exists: false, invalid: u.invalid, ...(u.userid !== undefined && { userId: u.userid }) };
    }
    const implicit = new Set([...IMPLICIT_GROUPS, ...(u.implicitgroups ?? [])]);
    return {
      name: u.name,
      exists: true,
      userId: u.userid,
      hidden: u.hidden,
      groups: (u.groups ?? []).filter((g) => !implicit.has(g)),
      block:
        u.blockid === undefined
          ? null
          : {
              id: u.blockid,
              by: u.blockedby ?? '',
              reason: u.blockreason ?? '',
              timestamp: u.blockedtimestamp ?? null,
              expiry: u.blockexpiry ?? null,
              sitewide: !u.blockpartial,
              noCreate: u.blocknocreate,
              anonOnly: u.blockanononly,
            },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// list=logevents

/** `renameuser`: Extension:Renameuser (core from 1.40); `gblrename`: CentralAuth's global renames. */
export const LOCAL_LOG_TYPES = ['block', 'rights', 'renameuser'] as const;
export const CENTRALAUTH_LOG_TYPES = ['globalauth', 'gblblock', 'gblrights', 'gblrename'] as const;
export type LogType = (typeof LOCAL_LOG_TYPES)[number] | (typeof CENTRALAUTH_LOG_TYPES)[number];

/** What a log entry says, by kind. `other` keeps what we do not interpret (legacy formats, new actions). */
export type LogDetails =
  | {
      kind: 'block';
      /** As the admin typed it (`infinity`, `1 week`, a timestamp…). */
      duration: string;
      /** null: never expires; undefined: the wiki could not compute it from the duration. */
      expiry: Date | null | undefined;
      /** `nocreate`, `noautoblock`, `noemail`, `nousertalk`, `anononly`, `hiddenname`. */
      flags: string[];
      sitewide: boolean;
      restrictions: { pages: { ns: number; title: string }[]; namespaces: number[]; actions: string[] };
    }
  | { kind: 'unblock' }
  | { kind: 'rights'; oldGroups: string[]; newGroups: string[]; newExpiries: Record<string, Date | null> }
  | { kind: 'global-status'; /** e.g. `locked`, `hidden`, `suppressed` */ added: string[]; removed: string[] }
  | { kind: 'global-block'; expiry: Date | null; flags: string[] }
  | { kind: 'global-unblock' }
  | { kind: 'global-rights'; oldGroups: string[]; newGroups: string[] }
  /** A local (`renameuser`) or global (`gblrename/rename`) rename; the entry's title names one of the two. */
  | { kind: 'rename'; oldName: string; newName: string }
  /** The action is hidden from us (revision deletion): no target, no params. */
  | { kind: 'hidden' }
  | { kind: 'other'; params: Record<string, unknown> };

export interface WikiLogEvent {
  logId: number;
  timestamp: Date;
  type: string;
  action: string;
  /** The username (or IP) the entry is about; null when hidden. */
  target: string | null;
  /** Who did it; null when hidden. */
  performer: string | null;
  comment: string | null;
  details: LogDetails;
}

const logEntry = z.object({
  logid: nonNegative,
  ns: int.optional(),
  title: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  type: z.string(),
  action: z.string(),
  user: z.string().optional(),
  timestamp,
  comment: z.string().optional(),
  actionhidden: flag,
});

export const logEventsAnswer = z.object({
  query: z.object({ logevents: z.array(logEntry) }),
});

const blockLogParams = z.object({
  duration: z.string(),
  flags: stringList,
  sitewide: z.boolean().default(true),
  expiry: timestamp.optional(),
  restrictions: z
    .object({
      pages: z.array(z.object({ page_ns: int, page_title: z.string() })).default([]),
      namespaces: z.array(int).default([]),
      actions: stringList.default([]),
    })
    .optional(),
});

const rightsLogParams = z.object({
  oldgroups: stringList,
  newgroups: stringList,
  newmetadata: z.array(z.object({ group: z.string(), expiry })).default([]),
});

const globalStatusParams = z.object({ added: stringList, removed: stringList });
const globalBlockParams = z.object({ expiry, flags: stringList.default([]) });
const globalRightsParams = z.union([
  z.object({ oldGroups: stringList, newGroups: stringList }),
  z.object({ oldgroups: stringList, newgroups: stringList }).transform((p) => ({ oldGroups: p.oldgroups, newGroups: p.newgroups })),
]);

const renameParams = z
  .object({ olduser: z.string().min(1), newuser: z.string().min(1) })
  .transform((p) => ({ oldName: p.olduser, newName: p.newuser }));

/**
 * Params of a log entry by type and action. Local block and rights params are normalised by
 * MediaWiki even for old entries, so a mismatch there is an error; extension logs kept older
 * formats (positional params), which become `other` rather than stopping a log reader.
 */
export function logDetails(
  type: string,
  action: string,
  params: Record<string, unknown>,
): { details: LogDetails } | { error: z.ZodError } {
  const parsed = (schema: z.ZodType, build: (p: any) => LogDetails, strict: boolean) => {
    const result = schema.safeParse(params);
    if (result.success) return { details: build(result.data) };
    return strict ? { error: result.error } : { details: { kind: 'other' as const, params } };
  };
  switch (`${type}/${action}`) {
    case 'block/block':
    case 'block/reblock':
      return parsed(blockLogParams, (p: z.output<typeof blockLogParams>) => ({
        kind: 'block',
        duration: p.duration,
        expiry: INFINITE_EXPIRIES.has(p.duration) ? null : p.expiry,
        flags: p.flags,
        sitewide: p.sitewide,
        restrictions: {
          pages: (p.restrictions?.pages ?? []).map((page) => ({ ns: page.page_ns, title: page.page_title })),
          namespaces: p.restrictions?.namespaces ?? [],
          actions: p.restrictions?.actions ?? [],
        },
      }), true);
    case 'block/unblock':
      return { details: { kind: 'unblock' } };
    case 'rights/rights':
    case 'rights/autopromote':
      return parsed(rightsLogParams, (p: z.output<typeof rightsLogParams>) => ({
        kind: 'rights',
        oldGroups: p.oldgroups,
        newGroups: p.newgroups,
        newExpiries: Object.fromEntries(p.newmetadata.map((m) => [m.group, m.expiry])),
      }), true);
    case 'globalauth/setstatus':
      return parsed(globalStatusParams, (p: z.output<typeof globalStatusParams>) => ({ kind: 'global-status', ...p }), false);
    case 'gblblock/gblock':
    case 'gblblock/gblock2':
    case 'gblblock/modify':
      return parsed(globalBlockParams, (p: z.output<typeof globalBlockParams>) => ({ kind: 'global-block', ...p }), false);
    case 'gblblock/gunblock':
      return { details: { kind: 'global-unblock' } };
    case 'renameuser/renameuser':
    case 'gblrename/rename':
      return parsed(renameParams, (p: z.output<typeof renameParams>) => ({ kind: 'rename', ...p }), false);
    case 'gblrights/usergroups':
      return parsed(globalRightsParams, (p: z.output<typeof globalRightsParams>) => ({ kind: 'global-rights', ...p }), false);
    default:
      return { details: { kind: 'other', params } };
  }
}

export type RawLogEntry = z.output<typeof logEntry>;

// ---------------------------------------------------------------------------------------------
// meta=globaluserinfo (CentralAuth)

const mergedAccount = z.object({
  wiki: z.string(),
  url: z.string(),
  id: nonNegative,
  timestamp: timestamp.optional(),
  method: z.string().optional(),
  editcount: nonNegative.optional(),
  registration: timestamp.optional().catch(undefined),
  groups: stringList.default([]),
  blocked: z.object({ expiry, reason: z.string() }).optional(),
});

export const globalUserInfoAnswer = z.object({
  query: z.object({
    globaluserinfo: z.object({
      missing: flag,
      id: nonNegative.optional(),
      name: z.string().optional(),
      home: z.string().optional(),
      registration: timestamp.optional().catch(undefined),
      locked: flag,
      hidden: flag,
      groups: stringList.default([]),
      merged: z.array(mergedAccount).default([]),
    }),
  }),
});

export interface GlobalAccount {
  /** Database name, e.g. `enwiki`. */
  wiki: string;
  url: string;
  /** The local user id on that wiki. */
  localId: number;
  /** Local groups on that wiki (as stored: explicit groups only). */
  groups: string[];
  /** A sitewide or partial block on that wiki; suppressed blocks are not disclosed. */
  blocked: { expiry: Date | null; reason: string } | null;
}

export type GlobalUserInfo =
  | { exists: false }
  | {
      exists: true;
      /** The central user id. */
      id: number;
      name: string;
      homeWiki: string | null;
      registration: Date | null;
      locked: boolean;
      hidden: boolean;
      globalGroups: string[];
      accounts: GlobalAccount[];
    };

export function toGlobalUserInfo(info: z.output<typeof globalUserInfoAnswer>['query']['globaluserinfo']): GlobalUserInfo | z.ZodError {
  if (info.missing) return { exists: false };
  if (info.id === undefined || info.name === undefined) {
    return new z.ZodError([{ code: 'custom', path: ['query', 'globaluserinfo', info.id === undefined ? 'id' : 'name'], message: 'required for an existing global account', input: info }]);
  }
  return {
    exists: true,
    id: info.id,
    name: info.name,
    homeWiki: info.home ?? null,
    registration: info.registration ?? null,
    locked: info.locked,
    hidden: info.hidden,
    globalGroups: info.groups,
    accounts: info.merged.map((m) => ({
      wiki: m.wiki,
      url: m.url,
      localId: m.id,
      groups: m.groups,
      blocked: m.blocked ?? null,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// list=globalblocks (GlobalBlocking)

const globalBlockEntry = z.object({
  id: z.union([nonNegative, z.string().regex(/^\d+$/).transform(Number)]),
  target: z.string().optional(),
  address: z.string().optional(),
  anononly: z.union([z.literal(''), z.boolean()]).optional(),
  by: z.string().nullable().optional(),
  bywiki: z.string().optional(),
  timestamp,
  expiry,
  reason: z.string(),
});

export const globalBlocksAnswer = z.object({
  query: z.object({ globalblocks: z.array(globalBlockEntry) }),
});

export interface GlobalBlock {
  id: number;
  /** A username, IP address or range. */
  target: string;
  anonOnly: boolean;
  by: string | null;
  byWiki: string | null;
  timestamp: Date;
  expiry: Date | null;
  reason: string;
}

export function toGlobalBlocks(entries: z.output<typeof globalBlockEntry>[]): GlobalBlock[] | z.ZodError {
  const blocks: GlobalBlock[] = [];
  for (const [i, b] of entries.entries()) {
    const target = b.target ?? b.address;
    if (target === undefined) {
      return new z.ZodError([{ code: 'custom', path: ['query', 'globalblocks', i, 'target'], message: 'required', input: b }]);
    }
    blocks.push({
      id: b.id,
      target,
      // formatversion=2 still sends this flag as "" when set.
      anonOnly: b.anononly === '' || b.anononly === true,
      by: b.by ?? null,
      byWiki: b.bywiki ?? null,
      timestamp: b.timestamp,
      expiry: b.expiry,
      reason: b.reason,
    });
  }
  return blocks;
}
