// Room routes: who a viewer is (room token or anonymous session) is settled here at the edge, the
// Room decides whether they may join and which object will hold their socket, and the upgrade is
// forwarded there untouched. Also room info, settings and token minting for operators.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { cookieValue, errorResponse, timingSafeEqualString } from '../http.ts';
import { clientAddress, rateLimit } from '../middleware/rate-limit.ts';
import { CLOSE, DisplayName, ROOM_PROTOCOL_VERSION, RoleName, RoomId, parseResume, type Role } from '../../core/rooms/room-protocol.ts';
import {
  ANONYMOUS_COOKIE,
  addressKey,
  keyedHash,
  newAnonymousId,
  signAnonymousIdentity,
  signRoomToken,
  signSession,
  verifyAnonymousIdentity,
  verifyRoomToken,
  verifySession,
} from '../../core/auth/room-token.ts';
import { ADMISSION_HEADER, shardName, type Admission } from '../../core/contracts/room-admission.ts';
import { refuseUpgrade } from '../websocket-answers.ts';
import { iceServersFor } from '../ice-servers.ts';

export const roomRoutes = new Hono<{ Bindings: Env }>();

/**
 * The operator routes (stats, tokens, settings) count against the admin API's budget per client
 * address, before any token is checked: they take the admin token too, and must not be a way
 * around the brake on guessing it.
 */
const adminRateLimit = rateLimit<{ Bindings: Env }>({
  limiter: (env) => env.ADMIN_RATE_LIMITER,
  key: (c) => `admin:${clientAddress(c)}`,
  periodSeconds: 60,
});

/** The anonymous identity cookie lives a year; every anonymous join renews it. */
const ANONYMOUS_COOKIE_MAX_AGE = 365 * 24 * 3600;

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
  let anonymous: { address: string; newIdentity: boolean; cookie: string } | undefined;
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
    // Who this anonymous viewer was before: the page's session, else the browser's cookie. Only
    // a viewer with neither is new, and new identities are what the Room limits per address.
    const secret = c.env.ROOM_TOKEN_SECRET;
    const cookie = cookieValue(c.req.header('cookie'), ANONYMOUS_COOKIE);
    const known =
      (q.session ? await verifySession(q.session, roomId, secret) : null) ??
      (cookie ? await verifyAnonymousIdentity(cookie, secret) : null);
    const anonId = known ?? newAnonymousId();
    uid = `a:${anonId}`;
    session = await signSession(roomId, anonId, secret);
    anonymous = {
      address: await addressKey(clientAddress(c), secret),
      newIdentity: known === null,
      cookie: await signAnonymousIdentity(anonId, secret),
    };
  }

  const conn = newAnonymousId().slice(0, 12);
  const room = c.env.ROOM.getByName(roomId);
  let placed: Awaited<ReturnType<typeof room.admit>>;
  try {
    placed = await room.admit({
      room: roomId,
      conn,
      uid,
      role,
      viaToken,
      ...(anonymous ? { address: anonymous.address, newIdentity: anonymous.newIdentity } : {}),
    });
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
  for (const h of [
    'upgrade',
    'connection',
    'sec-websocket-key',
    'sec-websocket-version',
    'sec-websocket-extensions',
    'sec-websocket-protocol',
  ]) {
    const v = c.req.header(h);
    if (v) headers.set(h, v);
  }
  headers.set(ADMISSION_HEADER, JSON.stringify(admission));
  const forward = new Request(c.req.url, { method: 'GET', headers });
  const target = placed.shard < 0 ? room : c.env.ROOM_SHARD.getByName(shardName(roomId, placed.shard));
  const upgraded = await target.fetch(forward);
  if (!anonymous || !upgraded.webSocket) return upgraded;
  // The browser keeps the identity (HttpOnly: no script of the page can read or leak it).
  const answer = new Headers(upgraded.headers);
  const secure = new URL(c.req.url).protocol === 'https:' ? '; Secure' : '';
  answer.append(
    'set-cookie',
    `${ANONYMOUS_COOKIE}=${anonymous.cookie}; Path=/rooms; Max-Age=${ANONYMOUS_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax${secure}`,
  );
  return new Response(null, { status: 101, webSocket: upgraded.webSocket, headers: answer });
});

/**
 * `GET /rooms/{roomId}/ice-servers` — STUN and short-lived TURN credentials for joining the
 * room's voice (core/auth/ice-servers.ts). For members only: a room token (bearer or `?token=`),
 * or an anonymous identity (the cookie, or `?session=`). TURN relays cost bandwidth, so minting
 * is counted per client address (`ICE_RATE_LIMITER`).
 */
roomRoutes.get(
  '/:roomId/ice-servers',
  rateLimit<{ Bindings: Env }>({ limiter: (env) => env.ICE_RATE_LIMITER, key: (c) => `ice:${clientAddress(c)}`, periodSeconds: 60 }),
  async (c) => {
    const roomId = c.req.param('roomId');
    if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
    const secret = c.env.ROOM_TOKEN_SECRET;
    if (!secret) return errorResponse(503, 'unavailable', 'rooms are not configured on this server');
    const uid = await memberOf(c.req.raw, roomId, secret);
    if (!uid) return errorResponse(401, 'unauthorized', 'join the room first: a room token, or the identity the room gave you');
    const now = Math.floor(Date.now() / 1000);
    const answer = await iceServersFor(c.env, await keyedHash(`ice|${uid}`, secret), now);
    return c.json(answer, 200, { 'cache-control': 'no-store' });
  },
);

/** Who a request comes from in a room: `t:<name>` for a room token, `a:<id>` for an anonymous identity. */
async function memberOf(req: Request, roomId: string, secret: string): Promise<string | null> {
  const url = new URL(req.url);
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.get('authorization') ?? '')?.[1]?.trim() ?? url.searchParams.get('token');
  if (bearer) {
    const check = await verifyRoomToken(bearer, secret, roomId, nowSec());
    return check.ok ? `t:${check.claims.name}` : null;
  }
  const session = url.searchParams.get('session');
  const anon = session ? await verifySession(session, roomId, secret) : null;
  if (anon) return `a:${anon}`;
  const cookie = cookieValue(req.headers.get('cookie'), ANONYMOUS_COOKIE);
  const fromCookie = cookie ? await verifyAnonymousIdentity(cookie, secret) : null;
  return fromCookie ? `a:${fromCookie}` : null;
}

/** `GET /rooms/{roomId}` — public facts about a room. */
roomRoutes.get('/:roomId', async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  const info = await c.env.ROOM.getByName(roomId).info();
  return c.json({ ...info, room: roomId }, 200, { 'cache-control': 'no-store' });
});

/** `GET /rooms/{roomId}/stats` — where the room's objects spend their time (operators only). */
roomRoutes.get('/:roomId/stats', adminRateLimit, async (c) => {
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
  anonymousJoinsPerMinute: z.number().int().min(1).max(100_000).optional(),
  anonymousIdsPerHour: z.number().int().min(1).max(1_000_000).optional(),
});

/** `PUT /rooms/{roomId}/settings` — operator (ADMIN_TOKEN) or the room's host (room token). */
roomRoutes.put('/:roomId/settings', adminRateLimit, async (c) => {
  const roomId = c.req.param('roomId');
  if (!RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  const auth = await authorize(c.env, c.req.header('authorization'), roomId);
  if (auth === 'none') return errorResponse(401, 'unauthorized', 'send the admin token or a host room token as a bearer token');
  if (auth === 'viewer') return errorResponse(403, 'forbidden', 'only a host or an operator may change room settings');
  const body = await readBody(c.req.raw);
  if (body === undefined) return errorResponse(400, 'invalid_json', 'body is not valid JSON');
  const parsed = SettingsBody.safeParse(body);
  if (!parsed.success) return errorResponse(400, 'invalid_request', `invalid settings: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  // Capacities shape the fan-out tree and the anonymous limits guard the room: operators only.
  const { anonymous: _open, ...operatorOnly } = parsed.data;
  if (auth === 'host' && Object.values(operatorOnly).some((v) => v !== undefined)) {
    return errorResponse(403, 'forbidden', 'only an operator may change capacities and limits');
  }
  const settings = await c.env.ROOM.getByName(roomId).configure(roomId, parsed.data);
  return c.json({ room: roomId, settings });
});

const TokenBody = z.strictObject({
  name: z.string().min(1).max(64),
  role: RoleName,
  ttlSec: z
    .number()
    .int()
    .min(10)
    .max(30 * 24 * 3600)
    .default(3600),
});

/** `POST /rooms/{roomId}/tokens` — mints a room token (operators only). */
roomRoutes.post('/:roomId/tokens', adminRateLimit, async (c) => {
  const roomId = c.req.param('roomId');
  if (roomId !== '*' && !RoomId.safeParse(roomId).success) return errorResponse(400, 'invalid_room', 'room id: 1-64 of A-Z a-z 0-9 _ -');
  if ((await authorize(c.env, c.req.header('authorization'), roomId)) !== 'admin') {
    return errorResponse(401, 'unauthorized', 'send the admin token as a bearer token');
  }
  const body = await readBody(c.req.raw);
  if (body === undefined) return errorResponse(400, 'invalid_json', 'body is not valid JSON');
  const parsed = TokenBody.safeParse(body);
  if (!parsed.success)
    return errorResponse(400, 'invalid_request', `invalid token request: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  if (!DisplayName.safeParse(parsed.data.name).success) return errorResponse(400, 'invalid_request', 'name is not a usable display name');
  const exp = nowSec() + parsed.data.ttlSec;
  const token = await signRoomToken(
    { room: roomId, name: parsed.data.name, role: parsed.data.role, exp, iat: nowSec() },
    c.env.ROOM_TOKEN_SECRET,
  );
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
