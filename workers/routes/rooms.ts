// Room routes: who a viewer is (room token or anonymous session) is settled here at the edge, the
// Room decides whether they may join and which object will hold their socket, and the upgrade is
// forwarded there untouched. Also room info, settings and token minting for operators.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { errorResponse, timingSafeEqualString } from '../http.ts';
import {
  CLOSE,
  DisplayName,
  ROOM_PROTOCOL_VERSION,
  RoleName,
  RoomId,
  parseResume,
  type Role,
} from '../../core/rooms/room-protocol.ts';
import { newAnonymousId, signRoomToken, signSession, verifyRoomToken, verifySession } from '../../core/auth/room-token.ts';
import { ADMISSION_HEADER, shardName, type Admission } from '../../core/contracts/room-admission.ts';
import { refuseUpgrade } from '../websocket-answers.ts';

export const roomRoutes = new Hono<{ Bindings: Env }>();

const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * `GET /rooms/{roomId}/ws?name=&token=&session=&resume=&v=` — the viewer's WebSocket.
 * The token (or the display name, for anonymous viewers) rides in the query string because a
 * browser cannot set headers on a WebSocket handshake.
 */
roomRoutes.get('/:roomId/ws', async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    return errorResponse(426, 'upgrade_required', 'this endpoint speaks WebSocket', { Upgrade: 'websocket' });
  }
  if (!c.env.ROOM_TOKEN_SECRET) {
    console.error(JSON.stringify({ level: 'error', msg: 'rooms: ROOM_TOKEN_SECRET is not set' }));
    return refuseUpgrade('unavailable', 'rooms are not configured on this server', 1011);
  }
  const q = c.req.query();
  if (q.v !== undefined && Number(q.v) !== ROOM_PROTOCOL_VERSION) {
    return refuseUpgrade('unsupported_version', `this server speaks room protocol v${ROOM_PROTOCOL_VERSION}`, CLOSE.badRequest);
  }

  let uid: string;
  let name: string;
  let role: Role;
  let session: string | undefined;
  const viaToken = typeof q.token === 'string' && q.token !== '';
  if (viaToken) {
    const check = await verifyRoomToken(q.token!, c.env.ROOM_TOKEN_SECRET, roomId, nowSec());
    if (!check.ok) return refuseUpgrade(check.code, check.reason, CLOSE.unauthorized);
    const n = DisplayName.safeParse(check.claims.name);
    if (!n.success) return refuseUpgrade('token_invalid', 'the token carries an unusable name', CLOSE.unauthorized);
    name = n.data;
    role = check.claims.role;
    uid = `t:${check.claims.name}`;
  } else {
    const n = DisplayName.safeParse(q.name ?? '');
    if (!n.success) return refuseUpgrade('invalid_message', `name: ${n.error.issues[0]?.message ?? 'invalid'}`, CLOSE.badRequest);
    name = n.data;
    role = 'viewer';
    const known = q.session ? await verifySession(q.session, roomId, c.env.ROOM_TOKEN_SECRET) : null;
    const anonId = known ?? newAnonymousId();
    uid = `a:${anonId}`;
    session = await signSession(roomId, anonId, c.env.ROOM_TOKEN_SECRET);
  }

  const conn = newAnonymousId().slice(0, 12);
  const room = c.env.ROOM.getByName(roomId);
  let placed;
  try {
    placed = await room.admit({ room: roomId, conn, uid, role, viaToken });
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'rooms: admit failed', room: roomId, error: String(err) }));
    return refuseUpgrade('unavailable', 'the room is busy; try again', 1013);
  }
  if (!placed.ok) return refuseUpgrade(placed.code, placed.reason, placed.close);

  const resume = parseResume(q.resume);
  const admission: Admission = {
    room: roomId,
    conn,
    uid,
    name,
    role,
    shard: placed.shard,
    ...(session ? { session } : {}),
    ...(resume ? { resume } : {}),
  };
  // Forward a request we build ourselves: only the upgrade headers and our admission go through.
  const headers = new Headers();
  for (const h of ['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']) {
    const v = c.req.header(h);
    if (v) headers.set(h, v);
  }
  headers.set(ADMISSION_HEADER, JSON.stringify(admission));
  const forward = new Request(c.req.url, { method: 'GET', headers });
  const target = placed.shard < 0 ? room : c.env.ROOM_SHARD.getByName(shardName(roomId, placed.shard));
  return target.fetch(forward);
});

/** `GET /rooms/{roomId}` — public facts about a room. */
roomRoutes.get('/:roomId', async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  const info = await c.env.ROOM.getByName(roomId).info();
  return c.json({ ...info, room: roomId }, 200, { 'cache-control': 'no-store' });
});

/** `GET /rooms/{roomId}/stats` — where the room's objects spend their time (operators only). */
roomRoutes.get('/:roomId/stats', async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  if ((await authorize(c.env, c.req.header('authorization'), roomId)) !== 'admin') {
    return errorResponse(401, 'unauthorized', 'send the admin token as a bearer token');
  }
  return c.json(await c.env.ROOM.getByName(roomId).stats(), 200, { 'cache-control': 'no-store' });
});

const SettingsBody = z.strictObject({
  anonymous: z.boolean().optional(),
  directCapacity: z.number().int().min(0).max(32_000).optional(),
  shardCapacity: z.number().int().min(1).max(32_000).optional(),
  maxShards: z.number().int().min(1).max(64).optional(),
});

/** `PUT /rooms/{roomId}/settings` — operator (ADMIN_TOKEN) or the room's host (room token). */
roomRoutes.put('/:roomId/settings', async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  const auth = await authorize(c.env, c.req.header('authorization'), roomId);
  if (auth === 'none') return errorResponse(401, 'unauthorized', 'send the admin token or a host room token as a bearer token');
  if (auth === 'viewer') return errorResponse(403, 'forbidden', 'only a host or an operator may change room settings');
  const body = await readBody(c.req.raw);
  if (body === undefined) return errorResponse(400, 'invalid_json', 'body is not valid JSON');
  const parsed = SettingsBody.safeParse(body);
  if (!parsed.success) return errorResponse(400, 'invalid_request', `invalid settings: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  // Capacities shape the fan-out tree: only operators may change them.
  if (auth === 'host' && (parsed.data.directCapacity !== undefined || parsed.data.shardCapacity !== undefined || parsed.data.maxShards !== undefined)) {
    return errorResponse(403, 'forbidden', 'only an operator may change capacities');
  }
  const settings = await c.env.ROOM.getByName(roomId).configure(roomId, parsed.data);
  return c.json({ room: roomId, settings });
});

const TokenBody = z.strictObject({
  name: z.string().min(1).max(64),
  role: RoleName,
  ttlSec: z.number().int().min(10).max(30 * 24 * 3600).default(3600),
});

/** `POST /rooms/{roomId}/tokens` — mints a room token (operators only). */
roomRoutes.post('/:roomId/tokens', async (c) => {
  const roomId = c.req.param('roomId');
  if (roomId !== '*' && !RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  if ((await authorize(c.env, c.req.header('authorization'), roomId)) !== 'admin') {
    return errorResponse(401, 'unauthorized', 'send the admin token as a bearer token');
  }
  const body = await readBody(c.req.raw);
  if (body === undefined) return errorResponse(400, 'invalid_json', 'body is not valid JSON');
  const parsed = TokenBody.safeParse(body);
  if (!parsed.success) return errorResponse(400, 'invalid_request', `invalid token request: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  if (!DisplayName.safeParse(parsed.data.name).success) return errorResponse(400, 'invalid_request', 'name is not a usable display name');
  const exp = nowSec() + parsed.data.ttlSec;
  const token = await signRoomToken({ room: roomId, name: parsed.data.name, role: parsed.data.role, exp, iat: nowSec() }, c.env.ROOM_TOKEN_SECRET);
  return c.json({ token, exp }, 201);
});

async function authorize(env: Env, header: string | undefined, roomId: string): Promise<'admin' | 'host' | 'viewer' | 'none'> {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return 'none';
  const token = m[1]!.trim();
  if (env.ADMIN_TOKEN && timingSafeEqualString(token, env.ADMIN_TOKEN)) return 'admin';
  const check = await verifyRoomToken(token, env.ROOM_TOKEN_SECRET, roomId, nowSec());
  if (!check.ok) return 'none';
  return check.claims.role === 'host' ? 'host' : 'viewer';
}

async function readBody(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.length > 16 * 1024) return undefined;
  try {
    return text === '' ? {} : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}
