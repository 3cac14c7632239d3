// The party-voice SFU on the media node's signalling listener. A member of a voice group too big
// for a mesh POSTs its SDP offer to `/voice/{room}` with the token its Room signed for its seat
// (bearer); the answer is 201 and a session resource to DELETE. The token is checked — one HMAC,
// no call anywhere — before anything is allocated; offers are bounded in size, in number per
// address, in seats per room and per node (503 with Retry-After past them). The Room tells the
// node which seats its moderators muted with a signed `POST /voice/{room}/moderation`.
import { randomBytes } from 'node:crypto';
import { verifyVoiceSfuModeration, verifyVoiceSfuToken, type VoiceSfuClaims } from '../../core/auth/voice-sfu-token.ts';
import { MAX_VOICE_SFU_TOKEN_LENGTH, VOICE_SFU_PREFIX } from '../../core/contracts/voice-sfu.ts';
import { VOICE_LIMITS } from '../../core/rooms/voice-wire.ts';
import type { Logger } from '../log.ts';
import { SdpError } from './sdp.ts';
import { SfuRooms } from './sfu-room.ts';
import { shapeSfuOffer } from './sfu-sdp.ts';
import { SfuSeat } from './sfu-seat.ts';
import { HttpError, type SignallingRequest, type SignallingResponse, type SignallingRoute } from './signalling-server.ts';
import type { IceServerConfig, WebRtcStack } from './stack.ts';
import { contentType, SDP } from './trickle.ts';
import { sessionCreated } from './trickle.ts';

export interface SfuLimits {
  /** Largest SDP offer accepted (bytes): a browser's offer grows ~1 KB per receive slot. */
  maxOfferBytes: number;
  /** Offers of one address being answered at once. */
  maxPendingPerAddress: number;
  /** Seats this node holds at once (offers being answered count); past it 503. */
  maxSeats: number;
  /** Seats one room holds on this node; past it 503. */
  maxRoomSeats: number;
}

export interface SfuEndpointOptions {
  stack: WebRtcStack;
  logger: Logger;
  limits: SfuLimits;
  /** VOICE_SFU_SECRET, shared with the Worker: member tokens and moderation are checked with it. */
  secret: string;
  iceServers: IceServerConfig[];
  connectTimeoutMs?: number;
  disconnectGraceMs?: number;
  retryAfterSeconds?: number;
}

export interface SfuEndpointCounters {
  offers: number;
  /** Offers refused before anything was allocated (token, limits, SDP). */
  refused: number;
  /** Refused for the token (missing, forged, expired, another room's). */
  unauthorized: number;
  /** Refused because the node or the room held as many seats as it may. */
  full: number;
  /** Seats ever accepted. */
  accepted: number;
}

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

export class SfuEndpoint implements SignallingRoute {
  readonly prefix = VOICE_SFU_PREFIX;
  readonly exposeHeaders = ['Location', 'Link', 'Accept-Post', 'Retry-After'];
  readonly counters: SfuEndpointCounters = { offers: 0, refused: 0, unauthorized: 0, full: 0, accepted: 0 };
  readonly rooms = new SfuRooms();
  readonly #opts: SfuEndpointOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, SfuSeat>();
  readonly #pending = new Map<string, number>();
  /** Offers being answered, per room and in all. */
  readonly #pendingRooms = new Map<string, number>();
  #pendingTotal = 0;
  /** The newest moderation applied per room (its `seq`): an older one is ignored. */
  readonly #moderationSeq = new Map<string, number>();

  constructor(opts: SfuEndpointOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** Seats held now (health, metrics). */
  get seatCount(): number {
    return this.#sessions.size;
  }

  seats(): Array<Record<string, unknown>> {
    return [...this.#sessions.values()].map((s) => s.stats());
  }

  /** Ends every seat (shutdown). */
  closeAll(reason: string): void {
    for (const seat of [...this.#sessions.values()]) seat.close(reason);
  }

  async handle(req: SignallingRequest): Promise<SignallingResponse> {
    const session = /^\/sessions\/([A-Za-z0-9_-]{1,64})$/.exec(req.path);
    if (session) return this.#resource(req, session[1]!);
    const m = /^\/([^/]+)(\/moderation)?$/.exec(req.path);
    const room = m?.[1];
    if (!room || !ROOM_RE.test(room) || room === 'sessions')
      throw new HttpError(404, 'not_found', 'the voice SFU is /voice/{room} (and /voice/{room}/moderation)');
    if (req.method === 'OPTIONS') return { status: 204, headers: { 'accept-post': SDP, allow: 'OPTIONS, POST' } };
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'the voice SFU takes POST', { allow: 'OPTIONS, POST' });
    return m[2] ? this.#moderate(req, room) : this.#seat(req, room);
  }

  async #seat(req: SignallingRequest, room: string): Promise<SignallingResponse> {
    this.counters.offers++;
    const refuse = (err: HttpError): never => {
      this.counters.refused++;
      throw err;
    };
    const unauthorized = (code: string, message: string): never => {
      this.counters.unauthorized++;
      this.#log.warn('voice sfu offer refused', { remote: req.remoteAddress, room, code, reason: message });
      return refuse(new HttpError(code === 'token_wrong_room' ? 403 : 401, code, message, { 'www-authenticate': 'Bearer' }));
    };
    // The token first: a request without a good one costs a lookup and at most one HMAC.
    const token = bearer(req);
    if (!token) unauthorized('token_required', 'ask the room: voice.sfu gives the token for your seat');
    if (token!.length > MAX_VOICE_SFU_TOKEN_LENGTH) unauthorized('token_invalid', 'the token is too long');
    const verdict = await verifyVoiceSfuToken(token!, this.#opts.secret, Math.floor(Date.now() / 1000));
    if (!verdict.ok)
      return unauthorized(verdict.reason === 'token expired' ? 'token_expired' : 'token_invalid', `the token: ${verdict.reason}`);
    const claims = verdict.claims;
    if (claims.room !== room) unauthorized('token_wrong_room', 'the token is for another room');
    if (contentType(req) !== SDP) refuse(new HttpError(415, 'unsupported_media_type', `an offer is ${SDP}`, { 'accept-post': SDP }));

    const limits = this.#opts.limits;
    const address = req.remoteAddress;
    const pending = this.#pending.get(address) ?? 0;
    if (pending >= limits.maxPendingPerAddress)
      refuse(new HttpError(429, 'too_many_pending', 'too many offers from this address are being answered', { 'retry-after': '2' }));
    // A member connecting again replaces its own seat: that seat does not count against it.
    const own = this.rooms.seat(room, claims.conn) ? 1 : 0;
    const retryAfter = { 'retry-after': String(this.#opts.retryAfterSeconds ?? 10) };
    if (this.#sessions.size - own + this.#pendingTotal >= limits.maxSeats) {
      this.counters.full++;
      refuse(new HttpError(503, 'at_capacity', 'this media node holds as many voice seats as it may', retryAfter));
    }
    if (this.rooms.seatsIn(room) - own + (this.#pendingRooms.get(room) ?? 0) >= limits.maxRoomSeats) {
      this.counters.full++;
      refuse(new HttpError(503, 'room_full', `this room has ${limits.maxRoomSeats} voice seats on this node`, retryAfter));
    }
    this.#pending.set(address, pending + 1);
    this.#pendingRooms.set(room, (this.#pendingRooms.get(room) ?? 0) + 1);
    this.#pendingTotal++;
    try {
      const body = await req.readBody(limits.maxOfferBytes).catch((err) => refuse(err as HttpError));
      let offer: ReturnType<typeof shapeSfuOffer>;
      try {
        // A voice group is at most VOICE_LIMITS.maxMembers: a member never needs more slots than the rest.
        offer = shapeSfuOffer(body, VOICE_LIMITS.maxMembers - 1);
      } catch (err) {
        if (err instanceof SdpError) return refuse(new HttpError(400, err.code, err.message));
        throw err;
      }
      return await this.#accept(req, claims, offer);
    } finally {
      this.#pendingTotal--;
      const left = (this.#pending.get(address) ?? 1) - 1;
      if (left > 0) this.#pending.set(address, left);
      else this.#pending.delete(address);
      const roomLeft = (this.#pendingRooms.get(room) ?? 1) - 1;
      if (roomLeft > 0) this.#pendingRooms.set(room, roomLeft);
      else this.#pendingRooms.delete(room);
    }
  }

  async #accept(req: SignallingRequest, claims: VoiceSfuClaims, offer: ReturnType<typeof shapeSfuOffer>): Promise<SignallingResponse> {
    // The session id is the resource's capability: 128 random bits, known only to the member.
    const id = randomBytes(16).toString('base64url');
    const o = this.#opts;
    const seat = new SfuSeat({
      id,
      claims,
      stack: o.stack,
      offer,
      remoteAddress: req.remoteAddress,
      logger: this.#log,
      connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
      disconnectGraceMs: o.disconnectGraceMs ?? 5_000,
      onPacket: (from, packet) => this.rooms.forward(from, packet),
      onReady: (s) => this.rooms.ready(s),
    });
    const answer = await seat.answer();
    if (seat.state === 'ended') throw new HttpError(500, 'internal_error', 'the seat ended while its answer was made');
    // The member's earlier seat (a reconnection, more slots) goes when the new one is taken (join).
    this.#sessions.set(id, seat);
    this.rooms.join(seat);
    this.counters.accepted++;
    void seat.ended.then(() => {
      this.#sessions.delete(id);
      this.rooms.leave(seat);
    });
    this.#log.info('voice sfu seat accepted', {
      sfu: id,
      room: claims.room,
      conn: claims.conn,
      remote: req.remoteAddress,
      slots: offer.slots.length,
      seatsInRoom: this.rooms.seatsIn(claims.room),
      seats: this.#sessions.size,
    });
    return sessionCreated(`${this.prefix}/sessions/${id}`, answer, o.iceServers);
  }

  async #moderate(req: SignallingRequest, room: string): Promise<SignallingResponse> {
    const token = bearer(req);
    const verdict = token ? await verifyVoiceSfuModeration(token, this.#opts.secret, Math.floor(Date.now() / 1000)) : null;
    if (!verdict?.ok || verdict.claims.room !== room) {
      this.#log.warn('voice sfu moderation refused', {
        remote: req.remoteAddress,
        room,
        reason: verdict?.ok ? 'another room' : verdict?.reason,
      });
      throw new HttpError(401, 'token_invalid', 'moderation is signed by the room', { 'www-authenticate': 'Bearer' });
    }
    const { forced, seq } = verdict.claims;
    // Out of order (or replayed): what was applied is newer.
    if (seq <= (this.#moderationSeq.get(room) ?? -1)) return { status: 204 };
    this.#moderationSeq.delete(room);
    this.#moderationSeq.set(room, seq);
    // Bounded: the oldest room's entry goes first (a replay older than its token's minute fails anyway).
    if (this.#moderationSeq.size > 4096) this.#moderationSeq.delete(this.#moderationSeq.keys().next().value!);
    this.rooms.setForced(room, forced);
    this.#log.info('voice sfu moderation', { room, forced });
    return { status: 204 };
  }

  async #resource(req: SignallingRequest, id: string): Promise<SignallingResponse> {
    // Knowing the session URL is the right to it (its id is the capability).
    // A preflight is answered whether or not the session still exists: the DELETE then says which.
    if (req.method === 'OPTIONS') return { status: 204, headers: { allow: 'OPTIONS, DELETE' } };
    const seat = this.#sessions.get(id);
    if (!seat) throw new HttpError(404, 'not_found', 'no such voice session');
    if (req.method !== 'DELETE')
      throw new HttpError(405, 'method_not_allowed', 'a voice session takes DELETE', { allow: 'OPTIONS, DELETE' });
    seat.close('the member left');
    return { status: 200 };
  }
}

function bearer(req: SignallingRequest): string | undefined {
  return /^Bearer +(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
}
