// WHEP on the media node: a viewer the origin sent here (307 with a ticket, core/contracts/whep.ts)
// POSTs its SDP offer to `/whep/{streamId}?ticket=…` and gets the answer (201) and a session
// resource to PATCH (trickle ICE) and DELETE. The viewer receives the stream's real-time feed
// (realtime-feed.ts): one encode on this node, copied to every viewer. Nothing is allocated before
// the ticket is checked — one HMAC, no call to the origin — and every offer is bounded in size and
// in number per address; past WHEP_MAX_VIEWERS the node answers 503 with Retry-After.
import { randomBytes } from 'node:crypto';
import { MAX_WHEP_TICKET_LENGTH, verifyWhepTicket, WHEP_PREFIX, WHEP_TICKET_PARAM } from '../../core/contracts/whep.ts';
import { NAME_RE } from '../../core/contracts/object-keys.ts';
import type { Logger } from '../log.ts';
import type { RealtimeFeeds } from './realtime-feed.ts';
import { chooseH264ForViewer, chooseOpus, SdpError, shapeOffer } from './sdp.ts';
import { HttpError, type SignallingRequest, type SignallingResponse, type SignallingRoute } from './signalling-server.ts';
import type { IceServerConfig, WebRtcStack } from './stack.ts';
import { applyTricklePatch, contentType, SDP, SESSION_OPTIONS, sessionCreated } from './trickle.ts';
import { type ForwardedTally, WhepViewer } from './whep-viewer.ts';

export interface WhepLimits {
  /** Largest SDP offer or trickle fragment accepted (bytes). */
  maxOfferBytes: number;
  /** Offers of one address being answered at once. */
  maxPendingPerAddress: number;
  /** Viewers this node holds at once (offers being answered count); past it 503 with Retry-After. */
  maxViewers: number;
}

export interface WhepEndpointOptions {
  stack: WebRtcStack;
  logger: Logger;
  limits: WhepLimits;
  /** The secret shared with the origin (INGEST_SECRET): tickets are checked with it. */
  secret: string;
  feeds: RealtimeFeeds;
  /** ICE servers offered to viewers in Link headers (RFC 9725 §4.6). */
  iceServers: IceServerConfig[];
  connectTimeoutMs?: number;
  disconnectGraceMs?: number;
  /** Video packets kept per viewer for retransmission (default 256, ~1 s at 2.5 Mbit/s). */
  nackBufferPackets?: number;
  /** Seconds a full node tells viewers to wait (Retry-After). */
  retryAfterSeconds?: number;
}

export interface WhepCounters {
  offers: number;
  /** Offers refused before anything was allocated (ticket, limits, SDP, stream not here). */
  refused: number;
  /** Refused for the ticket (missing, forged, expired, another stream's). */
  unauthorized: number;
  /** Refused because the node held WHEP_MAX_VIEWERS. */
  full: number;
  /** Viewers ever accepted. */
  accepted: number;
  /** What every viewer, ended ones included, was sent: RTP packets and bytes by kind. */
  forwarded: ForwardedTally;
}

interface WhepSession {
  viewer: WhepViewer;
  etag: string;
}

export class WhepEndpoint implements SignallingRoute {
  readonly prefix = WHEP_PREFIX;
  readonly anyOrigin = true;
  readonly exposeHeaders = ['Location', 'ETag', 'Link', 'Accept-Patch', 'Accept-Post', 'Retry-After'];
  readonly counters: WhepCounters = {
    offers: 0,
    refused: 0,
    unauthorized: 0,
    full: 0,
    accepted: 0,
    forwarded: { video: { packets: 0, bytes: 0 }, audio: { packets: 0, bytes: 0 } },
  };
  readonly #opts: WhepEndpointOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, WhepSession>();
  readonly #pending = new Map<string, number>();
  #pendingTotal = 0;

  constructor(opts: WhepEndpointOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** Viewers held now (health, metrics). */
  get viewerCount(): number {
    return this.#sessions.size;
  }

  viewers(): Array<Record<string, unknown>> {
    return [...this.#sessions.values()].map(({ viewer }) => viewer.stats());
  }

  /** Ends every viewer (shutdown). */
  closeAll(reason: string): void {
    for (const { viewer } of this.#sessions.values()) viewer.close(reason);
  }

  async handle(req: SignallingRequest): Promise<SignallingResponse> {
    const session = /^\/sessions\/([A-Za-z0-9_-]{1,64})$/.exec(req.path);
    if (session) return this.#resource(req, session[1]!);
    const stream = /^\/([^/]+)$/.exec(req.path)?.[1];
    if (!stream || !NAME_RE.test(stream) || stream === 'sessions')
      throw new HttpError(404, 'not_found', 'a WHEP endpoint is /whep/{streamId}');
    if (req.method === 'OPTIONS') return { status: 204, headers: { 'accept-post': SDP, allow: 'OPTIONS, POST' } };
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'a WHEP endpoint takes POST', { allow: 'OPTIONS, POST' });
    return this.#play(req, stream);
  }

  async #play(req: SignallingRequest, streamId: string): Promise<SignallingResponse> {
    this.counters.offers++;
    const refuse = (err: HttpError): never => {
      this.counters.refused++;
      throw err;
    };
    if (contentType(req) !== SDP) refuse(new HttpError(415, 'unsupported_media_type', `a WHEP offer is ${SDP}`, { 'accept-post': SDP }));
    // The ticket first: a request without one costs a lookup and at most one HMAC.
    const ticket = req.query.get(WHEP_TICKET_PARAM) ?? /^Bearer +(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!ticket) {
      this.counters.unauthorized++;
      refuse(
        new HttpError(401, 'ticket_required', 'ask the origin: POST /live/{streamId}/whep sends you here with a ticket', {
          'www-authenticate': 'Bearer',
        }),
      );
    }
    const verdict = await verifyWhepTicket(this.#opts.secret, ticket!.slice(0, MAX_WHEP_TICKET_LENGTH + 1), streamId);
    if (!verdict.ok) {
      this.counters.unauthorized++;
      this.#log.warn('whep offer refused', { remote: req.remoteAddress, streamId, code: verdict.code });
      refuse(
        new HttpError(verdict.code === 'ticket_wrong_stream' ? 403 : 401, verdict.code, verdict.message, {
          'www-authenticate': 'Bearer error="invalid_token"',
        }),
      );
    }
    const feed = await this.#opts.feeds.held(streamId);
    // Failed over to another node, ended, or published without real time: the origin knows where it is.
    if (!feed)
      refuse(new HttpError(404, 'stream_not_here', 'this media node does not hold the stream in real time (now): ask the origin again'));
    const address = req.remoteAddress;
    const pending = this.#pending.get(address) ?? 0;
    if (pending >= this.#opts.limits.maxPendingPerAddress) {
      refuse(new HttpError(429, 'too_many_pending', 'too many offers from this address are being answered', { 'retry-after': '2' }));
    }
    // Offers being answered count too: they become viewers in a moment.
    if (this.#sessions.size + this.#pendingTotal >= this.#opts.limits.maxViewers) {
      this.counters.full++;
      refuse(
        new HttpError(503, 'at_capacity', 'this media node holds as many WebRTC viewers as it may: play LL-HLS', {
          'retry-after': String(this.#opts.retryAfterSeconds ?? 10),
        }),
      );
    }
    this.#pending.set(address, pending + 1);
    this.#pendingTotal++;
    try {
      const body = await req.readBody(this.#opts.limits.maxOfferBytes).catch((err) => refuse(err as HttpError));
      let shaped: ReturnType<typeof shapeOffer>;
      try {
        shaped = shapeOffer(body, { offererSends: false, offererReceives: true, video: chooseH264ForViewer, audio: chooseOpus });
      } catch (err) {
        if (err instanceof SdpError) return refuse(new HttpError(400, err.code, err.message));
        throw err;
      }
      return await this.#accept(req, shaped, feed!);
    } finally {
      this.#pendingTotal--;
      const left = (this.#pending.get(address) ?? 1) - 1;
      if (left > 0) this.#pending.set(address, left);
      else this.#pending.delete(address);
    }
  }

  async #accept(
    req: SignallingRequest,
    shaped: ReturnType<typeof shapeOffer>,
    feed: NonNullable<Awaited<ReturnType<RealtimeFeeds['held']>>>,
  ): Promise<SignallingResponse> {
    // The session id is the resource's capability: 128 random bits, known only to the viewer.
    const id = randomBytes(16).toString('base64url');
    const o = this.#opts;
    const viewer = new WhepViewer({
      id,
      stack: o.stack,
      feed,
      offer: shaped.sdp,
      tracks: shaped.tracks,
      remoteAddress: req.remoteAddress,
      logger: this.#log,
      connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
      disconnectGraceMs: o.disconnectGraceMs ?? 5_000,
      nackBufferPackets: o.nackBufferPackets ?? 256,
      forwarded: this.counters.forwarded,
    });
    const answer = await viewer.answer();
    const etag = `"${randomBytes(8).toString('hex')}"`;
    this.#sessions.set(id, { viewer, etag });
    this.counters.accepted++;
    void viewer.ended.then(() => this.#sessions.delete(id));
    this.#log.info('whep viewer accepted', {
      whep: id,
      streamId: feed.streamId,
      remote: req.remoteAddress,
      viewers: this.#sessions.size,
      tracks: shaped.tracks.map((t) => `${t.kind}:${t.codec.name}/${t.codec.payloadType}`),
    });
    return sessionCreated(`${this.prefix}/sessions/${id}`, answer, o.iceServers, etag);
  }

  async #resource(req: SignallingRequest, id: string): Promise<SignallingResponse> {
    // Knowing the session URL is the right to it (its id is the capability).
    const session = this.#sessions.get(id);
    if (!session) throw new HttpError(404, 'not_found', 'no such WHEP session');
    if (req.method === 'OPTIONS') return SESSION_OPTIONS;
    if (req.method === 'DELETE') {
      session.viewer.close('the viewer ended the WHEP session');
      return { status: 200 };
    }
    if (req.method !== 'PATCH')
      throw new HttpError(405, 'method_not_allowed', 'a WHEP session takes PATCH and DELETE', { allow: 'OPTIONS, PATCH, DELETE' });
    const v = session.viewer;
    return applyTricklePatch(
      req,
      { etag: session.etag, remoteOffer: v.remoteOffer, addRemoteCandidate: (c, mid) => v.addRemoteCandidate(c, mid) },
      this.#opts.limits.maxOfferBytes,
      'WHEP',
    );
  }
}
