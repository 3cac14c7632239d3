// `edgelive rooms …`: room tokens, facts and stats, settings, and moderation (members, mute, ban,
// slow mode). Moderation is part of the room protocol, not of an HTTP API: the CLI mints itself a
// short-lived host token, joins the room over its WebSocket as a host would, sends the request and
// leaves once the room answered it (so it shows in the room's presence for that moment).
import { ROOM_PROTOCOL_VERSION, ROLES, ServerMessage, Uid, type ClientMessageInput, type Member } from '../../core/rooms/room-protocol.ts';
import { CliError, fields, integer, table, UsageError, type Command, type Ctx } from './context.ts';

/** How the CLI appears in a room it moderates (--as changes it). */
const DEFAULT_MODERATOR_NAME = 'operator';
/** Seconds a mute lasts unless --seconds says otherwise. */
const DEFAULT_MUTE_SECONDS = 600;
const ROOM_ANSWER_TIMEOUT_MS = 10_000;

interface RoomSocket {
  members: Member[] | undefined;
  /** Sends one request and resolves with the room's ack, or throws its error. */
  request(message: ClientMessageInput): Promise<void>;
}

/** Joins the room as a host for one `act`, then leaves. */
async function asHost<T>(c: Ctx, room: string, act: (s: RoomSocket) => Promise<T>): Promise<T> {
  const name = c.v.as ?? DEFAULT_MODERATOR_NAME;
  const { token } = await c.call<{ token: string }>('POST', `/rooms/${encodeURIComponent(room)}/tokens`, {
    name,
    role: 'host',
    ttlSec: 60,
  });
  const url = new URL(`/rooms/${encodeURIComponent(room)}/ws`, c.baseUrl.replace(/^http/, 'ws'));
  url.searchParams.set('token', token);
  url.searchParams.set('v', String(ROOM_PROTOCOL_VERSION));
  const ws = new c.io.WebSocket(url.toString());
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  let failed: ((e: Error) => void) | null = null;
  let lastError: CliError | null = null;
  let rid = 0;
  try {
    const welcome = await new Promise<Member[] | undefined>((resolve, reject) => {
      failed = reject;
      const timer = setTimeout(
        () => reject(new CliError('timeout', `room ${room} did not answer within ${ROOM_ANSWER_TIMEOUT_MS / 1000} s`)),
        ROOM_ANSWER_TIMEOUT_MS,
      );
      ws.addEventListener('message', (ev) => {
        const parsed = ServerMessage.safeParse(JSON.parse(String(ev.data)));
        if (!parsed.success) return;
        const m = parsed.data;
        if (m.type === 'welcome') {
          clearTimeout(timer);
          resolve(m.state?.presence.members);
        } else if (m.type === 'error') {
          const err = new CliError(m.code, m.reason);
          const pending = m.rid !== undefined ? waiting.get(m.rid) : undefined;
          if (pending) pending.reject(err);
          else lastError = err;
        } else if (m.type === 'ack' && m.rid !== undefined) {
          waiting.get(m.rid)?.resolve();
        }
      });
      ws.addEventListener('close', (ev) => {
        clearTimeout(timer);
        const err =
          lastError ?? new CliError('room_closed', `room ${room} closed the connection (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
        failed?.(err);
        for (const w of waiting.values()) w.reject(err);
      });
      ws.addEventListener('error', () => {
        // A close event follows with the reason.
      });
    });
    failed = null;
    return await act({
      members: welcome,
      request: (message) =>
        new Promise<void>((resolve, reject) => {
          const id = `cli${++rid}`;
          const timer = setTimeout(
            () => reject(new CliError('timeout', `room ${room} did not answer ${message.type}`)),
            ROOM_ANSWER_TIMEOUT_MS,
          );
          waiting.set(id, {
            resolve: () => (clearTimeout(timer), resolve()),
            reject: (e) => (clearTimeout(timer), reject(e)),
          });
          ws.send(JSON.stringify({ ...message, rid: id }));
        }),
    });
  } finally {
    ws.close(1000, 'done');
  }
}

/** A uid (`t:name`, `a:…`), or a display name looked up among the room's members. */
function resolveUid(s: RoomSocket, who: string, room: string): string {
  if (Uid.safeParse(who).success) return who;
  if (!s.members)
    throw new CliError(
      'too_many_members',
      `room ${room} is too big to list its members; name the viewer by uid (t:<name> for token holders)`,
    );
  const found = s.members.filter((m) => m.name === who);
  if (found.length === 1) return found[0]!.uid;
  if (found.length === 0)
    throw new CliError(
      'not_found',
      `no one named ${JSON.stringify(who)} is in room ${room}; a token holder's uid is t:<name> (see: edgelive rooms members ${room})`,
    );
  throw new CliError(
    'ambiguous',
    `${found.length} members of room ${room} are named ${JSON.stringify(who)}: ${found.map((m) => m.uid).join(', ')}; name one by uid`,
  );
}

const DONE = { 'mod.mute': 'muted', 'mod.unmute': 'unmuted', 'mod.ban': 'banned', 'mod.unban': 'unbanned' } as const;

function sanction(name: string, type: 'mod.mute' | 'mod.unmute' | 'mod.ban' | 'mod.unban', summary: string): Command {
  const isMute = type === 'mod.mute';
  return {
    name,
    group: 'Rooms',
    synopsis: `<room> <uid|name>${isMute ? ' [--seconds N]' : ''} [--as NAME]`,
    summary,
    args: ['a room id', 'a viewer (uid or display name)'],
    flags: isMute ? ['seconds', 'as'] : ['as'],
    async run(c) {
      const room = c.args[0]!;
      const seconds = isMute ? (c.v.seconds ? integer(c.v.seconds, '--seconds') : DEFAULT_MUTE_SECONDS) : 0;
      const uid = await asHost(c, room, async (s) => {
        const target = resolveUid(s, c.args[1]!, room);
        await s.request(isMute ? { type, uid: target, seconds } : { type, uid: target });
        return target;
      });
      const done = { room, uid, action: type.slice(4), ...(isMute ? { seconds } : {}) };
      c.print(done, () => `${DONE[type]} ${uid} in ${room}${isMute ? ` for ${seconds} s` : ''}\n`);
    },
  };
}

export const roomCommands: Command[] = [
  {
    name: 'rooms token',
    group: 'Rooms',
    synopsis: '<room|*> --name N [--role viewer|moderator|host] [--ttl SECONDS]',
    summary: "mint a room token (a viewer's by default; * is valid in every room)",
    args: ['a room id'],
    flags: ['name', 'role', 'ttl'],
    async run(c) {
      if (!c.v.name) throw new UsageError('rooms token needs --name');
      const role = c.v.role ?? 'viewer';
      if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role is one of ${ROLES.join(', ')}`);
      const r = await c.call<{ token: string; exp: number }>('POST', `/rooms/${c.arg(0)}/tokens`, {
        name: c.v.name,
        role,
        ...(c.v.ttl ? { ttlSec: integer(c.v.ttl, '--ttl') } : {}),
      });
      c.print(
        r,
        () =>
          `${r.token}\n${fields([
            ['uid', `t:${c.v.name}`],
            ['role', role],
            ['expires', new Date(r.exp * 1000).toISOString()],
          ])}`,
      );
    },
  },
  {
    name: 'rooms show',
    group: 'Rooms',
    synopsis: '<room>',
    summary: 'viewers, connections, shards and whether anonymous viewers may join',
    args: ['a room id'],
    async run(c) {
      const r = await c.call<{
        viewers: number;
        connections: number;
        direct: number;
        shards: Array<{ index: number; connections: number }>;
        anonymous: boolean;
      }>('GET', `/rooms/${c.arg(0)}`);
      c.print(
        r,
        () =>
          `room ${c.args[0]}\n${fields([
            ['viewers', r.viewers],
            ['connections', r.connections],
            ['direct', r.direct],
            ['shards', r.shards.map((s) => `#${s.index}: ${s.connections}`).join(', ')],
            ['anonymous', r.anonymous ? 'allowed' : 'not allowed'],
          ])}`,
      );
    },
  },
  {
    name: 'rooms stats',
    group: 'Rooms',
    synopsis: '<room>',
    summary: "where the room's objects spend their time (JSON)",
    args: ['a room id'],
    run: async (c) => c.print(await c.call('GET', `/rooms/${c.arg(0)}/stats`)),
  },
  {
    name: 'rooms settings',
    group: 'Rooms',
    synopsis: '<room> [--anonymous on|off] [--direct-capacity N] [--shard-capacity N] [--max-shards N]',
    summary: "change a room's settings; without flags, show them",
    args: ['a room id'],
    flags: ['anonymous', 'direct-capacity', 'shard-capacity', 'max-shards'],
    async run(c) {
      const a = c.v.anonymous;
      if (a !== undefined && !['on', 'off', 'true', 'false'].includes(a)) throw new UsageError('--anonymous is on or off');
      const body = {
        ...(a !== undefined ? { anonymous: a === 'on' || a === 'true' } : {}),
        ...(c.v['direct-capacity'] !== undefined ? { directCapacity: integer(c.v['direct-capacity'], '--direct-capacity') } : {}),
        ...(c.v['shard-capacity'] !== undefined ? { shardCapacity: integer(c.v['shard-capacity'], '--shard-capacity') } : {}),
        ...(c.v['max-shards'] !== undefined ? { maxShards: integer(c.v['max-shards'], '--max-shards') } : {}),
      };
      const r = await c.call<{ room: string; settings: Record<string, unknown> }>('PUT', `/rooms/${c.arg(0)}/settings`, body);
      c.print(r, () => `room ${r.room}\n${fields(Object.entries(r.settings).map(([k, v]) => [k, String(v)]))}`);
    },
  },
  {
    name: 'rooms members',
    group: 'Rooms',
    synopsis: '<room> [--as NAME]',
    summary: 'who is in the room (uid, name, role); listed by rooms of up to 100 viewers',
    args: ['a room id'],
    flags: ['as'],
    async run(c) {
      const members = await asHost(c, c.args[0]!, async (s) => s.members);
      if (!members) throw new CliError('too_many_members', `room ${c.args[0]} has more viewers than it lists by name`);
      // The CLI itself was in the room while it asked.
      const others = members.filter((m) => m.uid !== `t:${c.v.as ?? DEFAULT_MODERATOR_NAME}`);
      c.print({ members: others }, () =>
        table(
          ['UID', 'ROLE', 'NAME'],
          others.map((m) => [m.uid, m.role, m.name]),
        ),
      );
    },
  },
  sanction('rooms mute', 'mod.mute', 'keep a viewer from chatting for --seconds (default 600)'),
  sanction('rooms unmute', 'mod.unmute', 'lift a mute'),
  sanction('rooms ban', 'mod.ban', 'disconnect a viewer and keep them out of the room'),
  sanction('rooms unban', 'mod.unban', 'lift a ban'),
  {
    name: 'rooms slow',
    group: 'Rooms',
    synopsis: '<room> --seconds N [--as NAME]',
    summary: 'slow mode: viewers may chat once per N seconds (0 turns it off)',
    args: ['a room id'],
    flags: ['seconds', 'as'],
    async run(c) {
      if (c.v.seconds === undefined) throw new UsageError('rooms slow needs --seconds');
      const seconds = integer(c.v.seconds, '--seconds');
      await asHost(c, c.args[0]!, (s) => s.request({ type: 'mod.slow', seconds }));
      c.print(
        { room: c.args[0], slowModeSeconds: seconds },
        () => `slow mode in ${c.args[0]}: ${seconds === 0 ? 'off' : `one message per ${seconds} s`}\n`,
      );
    },
  },
];
