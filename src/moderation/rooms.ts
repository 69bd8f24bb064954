// Operators name rooms by id, by alias, or as every room of a space; policy() decides for room ids
// only, so each pass first turns the configuration into one that names every room by id.
//
// Resolved at every pass, not once at start: aliases move and spaces gain and lose rooms, and
// the level-triggered pass is what keeps up with that. The cost is one request per alias and one
// per space (two for a space named by alias) per pass, next to the one snapshot per room a pass
// already reads. An alias used twice (say in `rooms` and `gated_rooms`) is asked once.
//
// What cannot be resolved (an alias naming no room, a space the bot cannot read) is reported and
// its rooms are left out of this pass: out of the desired state, they keep their records and
// nothing of the service's doing there is undone because of a transient failure.
import { MatrixError, type MatrixGateway } from '../matrix/index.ts';
import type { ModerationConfig } from './config.ts';
import type { Report } from './types.ts';

type RoomKey = 'room_id' | 'alias' | 'space';
type NamedBy = Partial<Record<RoomKey, string>>;

/** A configuration entry naming its room by id only. */
export type ByRoomId<T> = Omit<T, RoomKey> & { room_id: string };

type ManagedRoom = ModerationConfig['rooms'][number];
type GatedRoom = ModerationConfig['gated_rooms'][number];
type PolicyList = NonNullable<ModerationConfig['policy_list']>;

/** A moderation configuration whose rooms are all named by id, as policy() takes it. */
export type ResolvedModerationConfig = Omit<ModerationConfig, 'rooms' | 'gated_rooms' | 'policy_list'> & {
  rooms: ByRoomId<ManagedRoom>[];
  gated_rooms: ByRoomId<GatedRoom>[];
  policy_list: ByRoomId<PolicyList> | undefined;
};

export interface RoomResolution {
  config: ResolvedModerationConfig;
  /** `room_unavailable` reports: an alias naming no room, a space the bot cannot read. */
  problems: Report[];
  /** Rooms named by two entries of one list (e.g. by id and by alias); the first entry applies. */
  duplicates: string[];
}

export async function resolveRooms(config: ModerationConfig, gateway: MatrixGateway): Promise<RoomResolution> {
  const resolver = new Resolver(gateway);
  const duplicates: string[] = [];

  // A room named directly keeps its own entry's settings, whatever space also lists it; so
  // direct entries go first, and a space only adds the rooms nobody claimed before it.
  const rooms = new Named<ManagedRoom>(duplicates);
  for (const entry of config.rooms) {
    if (entry.space === undefined) rooms.add(await resolver.room(entry), entry);
  }
  for (const entry of config.rooms) {
    if (entry.space === undefined) continue;
    for (const child of (await resolver.children(entry.space)) ?? []) rooms.addQuietly(child, entry);
  }

  const gated = new Named<GatedRoom>(duplicates);
  for (const entry of config.gated_rooms) gated.add(await resolver.room(entry), entry);

  const list = config.policy_list;
  const listId = list && (await resolver.room(list));

  return {
    config: { ...config, rooms: rooms.entries, gated_rooms: gated.entries, policy_list: list && listId ? byRoomId(list, listId) : undefined },
    problems: resolver.problems,
    duplicates,
  };
}

/** One list's entries by room id, in order; the first entry naming a room wins. */
class Named<T extends NamedBy> {
  readonly #byId = new Map<string, { entry: ByRoomId<T>; name: string }>();
  readonly #duplicates: string[];

  constructor(duplicates: string[]) {
    this.#duplicates = duplicates;
  }

  get entries(): ByRoomId<T>[] {
    return [...this.#byId.values()].map((named) => named.entry);
  }

  add(roomId: string | undefined, entry: T): void {
    if (roomId === undefined) return;
    const first = this.#byId.get(roomId);
    const name = entry.room_id ?? entry.alias ?? roomId;
    if (first) this.#duplicates.push(`${roomId} is named twice (${first.name} and ${name}): the entry for ${first.name} applies`);
    else this.#byId.set(roomId, { entry: byRoomId(entry, roomId), name });
  }

  /** Spaces share rooms as a matter of course, so a room already named is no mistake. */
  addQuietly(roomId: string, entry: T): void {
    if (!this.#byId.has(roomId)) this.add(roomId, entry);
  }
}

function byRoomId<T extends NamedBy>(entry: T, roomId: string): ByRoomId<T> {
  const { room_id: _id, alias: _alias, space: _space, ...settings } = entry;
  return { ...settings, room_id: roomId };
}

class Resolver {
  readonly problems: Report[] = [];
  readonly #gateway: MatrixGateway;
  readonly #aliases = new Map<string, Promise<string | undefined>>();

  constructor(gateway: MatrixGateway) {
    this.#gateway = gateway;
  }

  /** The room id an entry names, or undefined (and reported) when its alias names no room. */
  room(entry: NamedBy): Promise<string | undefined> {
    return entry.room_id !== undefined ? Promise.resolve(entry.room_id) : this.#alias(entry.alias!);
  }

  /** The rooms a space lists, or undefined (and reported) when it cannot be read. */
  async children(space: string): Promise<string[] | undefined> {
    const spaceId = space.startsWith('#') ? await this.#alias(space) : space;
    if (spaceId === undefined) return undefined;
    try {
      return await this.#gateway.spaceChildren(spaceId);
    } catch (error) {
      const named = spaceId === space ? space : `${space} (${spaceId})`;
      return this.#failed(error, spaceId, `Cannot read the space ${named}, so nothing was done in its rooms; the bot must be in the space`);
    }
  }

  #alias(alias: string): Promise<string | undefined> {
    let resolved = this.#aliases.get(alias);
    if (!resolved) {
      resolved = this.#gateway.resolveAlias(alias).then(
        (roomId) => {
          if (roomId === undefined) this.#report(null, `${alias} names no room (no such alias), so nothing was done there`);
          return roomId;
        },
        (error: unknown) => this.#failed(error, null, `Cannot resolve ${alias}, so nothing was done there`),
      );
      this.#aliases.set(alias, resolved);
    }
    return resolved;
  }

  /** A homeserver that refuses or does not answer is reported; anything but a MatrixError is a bug. */
  #failed(error: unknown, roomId: string | null, what: string): undefined {
    if (!(error instanceof MatrixError)) throw error;
    this.#report(roomId, `${what} (${error.message})`);
    return undefined;
  }

  #report(roomId: string | null, message: string): void {
    this.problems.push({ kind: 'report', problem: 'room_unavailable', roomId, userIds: [], message });
  }
}
