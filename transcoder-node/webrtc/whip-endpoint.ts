// WHIP (RFC 9725) on the media node: POST an SDP offer with the stream key as bearer token, get the
// answer and a session resource to PATCH (trickle ICE) and DELETE. Nothing is allocated for a
// request until its offer parsed and its key was accepted by the origin: a bad key costs the node
// one HTTP exchange and one origin call, never a port, a peer connection or an ffmpeg.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { publishTokenStream } from '../../core/auth/publish-token.ts';
import type { AuthorizeResponse } from '../../core/contracts/ingest-protocol.ts';
import type { Logger } from '../log.ts';
import type { Publisher } from '../publisher.ts';
import { chooseH264, chooseOpus, SdpError, shapeOffer } from './sdp.ts';
import { HttpError, type SignallingRequest, type SignallingResponse, type SignallingRoute } from './signalling-server.ts';
import type { IceServerConfig, WebRtcStack } from './stack.ts';
import { applyTricklePatch, contentType, SDP, SESSION_OPTIONS, sessionCreated } from './trickle.ts';
import { WhipPublisher } from './whip-publisher.ts';

/** `byNode`: refused for this node's load (capacity, overload), not for the key: 503, try another node. */
export type WhipAuthorizeResult = { ok: true; context: AuthorizeResponse } | { ok: false; reason: string; byNode?: boolean };

export interface WhipLimits {
  /** Largest SDP offer or trickle fragment accepted (bytes). */
  maxOfferBytes: number;
  /** Offers of one address being checked or answered at once. */
  maxPendingPerAddress: number;
  /** WHIP sessions this node holds at once; past it 503 with Retry-After. */
  maxSessions: number;
}

export interface WhipEndpointOptions {
  stack: WebRtcStack;
  logger: Logger;
  limits: WhipLimits;
  /** The key check and lease, as for RTMP and SRT (`origin.authorize`). */
  authorize: (streamKey: string, remoteAddress: string) => Promise<WhipAuthorizeResult>;
  /** An accepted publisher: start its ingest session. */
  onPublisher: (publisher: Publisher, streamKey: string) => void;
  /** A lease was taken but no publisher came of it (the answer failed): give it back. */
  abandon: (lease: AuthorizeResponse) => void;
  /** ICE servers offered to clients in Link headers (RFC 9725 §4.6). */
  iceServers: IceServerConfig[];
  /** REMB budget told to publishers (bits/s). */
  maxBitrate: number;
  connectTimeoutMs?: number;
  disconnectGraceMs?: number;
  maxBufferedBytes?: number;
  /** A connected publisher silent this long is dropped (ms; default 10 s). */
  mediaTimeoutMs?: number;
}

export interface WhipCounters {
  offers: number;
  /** Offers refused before anything was allocated (bad key, bad SDP, limits). */
  refused: number;
  unauthorized: number;
}

interface WhipSession {
  publisher: WhipPublisher;
  etag: string;
  /** SHA-256 of the bearer token that created it: the resource answers only to the same token. */
  tokenHash: Buffer;
  endpoint: string;
}

const MAX_TOKEN_LENGTH = 512;

function bearer(req: SignallingRequest): string {
  const m = /^Bearer +(\S+)$/i.exec(String(req.headers.authorization ?? ''));
  if (!m || m[1]!.length > MAX_TOKEN_LENGTH) {
    throw new HttpError(401, 'unauthorized', 'a stream key is required as "Authorization: Bearer <key>"', { 'www-authenticate': 'Bearer' });
  }
  return m[1]!;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest();

export class WhipEndpoint implements SignallingRoute {
  readonly prefix = '/whip';
  readonly exposeHeaders = ['Location', 'ETag', 'Link', 'Accept-Patch', 'Accept-Post', 'Retry-After'];
  readonly counters: WhipCounters = { offers: 0, refused: 0, unauthorized: 0 };
  readonly #opts: WhipEndpointOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, WhipSession>();
  readonly #pending = new Map<string, number>();
  #pendingTotal = 0;

  constructor(opts: WhipEndpointOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** The sessions held now (health). */
  sessions(): Array<Record<string, unknown>> {
    return [...this.#sessions.values()].map(({ publisher, endpoint }) => ({
      ...publisher.stats(),
      endpoint,
      streamId: publisher.lease.streamId,
      epoch: publisher.lease.epoch,
      startedAt: new Date(publisher.createdAt).toISOString(),
    }));
  }

  /** Ends every session (shutdown): their peer connections close, their ingest sessions end. */
  closeAll(reason: string): void {
    for (const { publisher } of this.#sessions.values()) publisher.close(reason);
  }

  async handle(req: SignallingRequest): Promise<SignallingResponse> {
    const session = /^\/sessions\/([A-Za-z0-9_-]{1,64})$/.exec(req.path);
    if (session) return this.#resource(req, session[1]!);
    if (req.path.startsWith('/sessions')) throw new HttpError(404, 'not_found', 'no such WHIP session');
    if (!/^\/?[A-Za-z0-9_.-]{0,128}$/.test(req.path)) throw new HttpError(404, 'not_found', 'a WHIP endpoint is /whip or /whip/{name}');
    if (req.method === 'OPTIONS') return { status: 204, headers: { 'accept-post': SDP, allow: 'OPTIONS, POST' } };
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'a WHIP endpoint takes POST', { allow: 'OPTIONS, POST' });
    return this.#publish(req);
  }

  async #publish(req: SignallingRequest): Promise<SignallingResponse> {
    this.counters.offers++;
    const refuse = (err: HttpError): never => {
      this.counters.refused++;
      throw err;
    };
    if (contentType(req) !== SDP) refuse(new HttpError(415, 'unsupported_media_type', `a WHIP offer is ${SDP}`, { 'accept-post': SDP }));
    let token: string;
    try {
      token = bearer(req);
    } catch (err) {
      this.counters.unauthorized++;
      return refuse(err as HttpError);
    }
    // A publish token names its stream: pointed at an endpoint named for another stream it is
    // refused before the origin is asked, whose lease would fence the stream it does name.
    const named = publishTokenStream(token);
    if (named !== null && req.path !== '/' && req.path.slice(1) !== named) {
      this.counters.unauthorized++;
      refuse(
        new HttpError(401, 'token_wrong_stream', `this publish token is for stream ${named}, not ${req.path.slice(1)}`, {
          'www-authenticate': 'Bearer error="invalid_token"',
        }),
      );
    }
    const address = req.remoteAddress;
    const pending = this.#pending.get(address) ?? 0;
    if (pending >= this.#opts.limits.maxPendingPerAddress) {
      refuse(new HttpError(429, 'too_many_pending', 'too many offers from this address are being answered', { 'retry-after': '2' }));
    }
    // Offers being answered count too: they become sessions in a moment.
    if (this.#sessions.size + this.#pendingTotal >= this.#opts.limits.maxSessions) {
      refuse(new HttpError(503, 'at_capacity', 'this media node holds as many WHIP sessions as it may', { 'retry-after': '10' }));
    }
    this.#pending.set(address, pending + 1);
    this.#pendingTotal++;
    try {
      const body = await req.readBody(this.#opts.limits.maxOfferBytes).catch((err) => refuse(err as HttpError));
      // The offer is checked before the key: the lease the key check takes fences the stream's
      // current publisher, which an offer we could never answer must not do.
      let shaped: ReturnType<typeof shapeOffer>;
      try {
        shaped = shapeOffer(body, { offererSends: true, video: chooseH264, audio: chooseOpus });
      } catch (err) {
        if (err instanceof SdpError) return refuse(new HttpError(400, err.code, err.message));
        throw err;
      }
      const auth = await this.#opts.authorize(token, address);
      if (!auth.ok && auth.byNode) {
        this.#log.warn('whip publish refused by this node', { remote: address, reason: auth.reason });
        return refuse(new HttpError(503, 'node_unavailable', auth.reason, { 'retry-after': '5' }));
      }
      if (!auth.ok) {
        this.counters.unauthorized++;
        this.#log.warn('whip publish refused', { remote: address, key: `${token.slice(0, 4)}…`, reason: auth.reason });
        return refuse(
          new HttpError(401, 'unauthorized', 'the stream key was not accepted', { 'www-authenticate': 'Bearer error="invalid_token"' }),
        );
      }
      return await this.#accept(req, token, shaped, auth.context);
    } finally {
      this.#pendingTotal--;
      const left = (this.#pending.get(address) ?? 1) - 1;
      if (left > 0) this.#pending.set(address, left);
      else this.#pending.delete(address);
    }
  }

  async #accept(
    req: SignallingRequest,
    token: string,
    shaped: ReturnType<typeof shapeOffer>,
    lease: AuthorizeResponse,
  ): Promise<SignallingResponse> {
    const id = randomBytes(12).toString('base64url');
    const o = this.#opts;
    const publisher = new WhipPublisher({
      id,
      stack: o.stack,
      lease,
      offer: shaped.sdp,
      tracks: shaped.tracks,
      remoteAddress: req.remoteAddress,
      logger: this.#log,
      maxBitrate: o.maxBitrate,
      connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
      disconnectGraceMs: o.disconnectGraceMs ?? 5_000,
      maxBufferedBytes: o.maxBufferedBytes ?? 8 * 1024 * 1024,
      mediaTimeoutMs: o.mediaTimeoutMs ?? 10_000,
    });
    let answer: string;
    try {
      answer = await publisher.answer();
    } catch (err) {
      o.abandon(lease);
      throw err;
    }
    const etag = `"${randomBytes(8).toString('hex')}"`;
    this.#sessions.set(id, { publisher, etag, tokenHash: hashToken(token), endpoint: req.path });
    void publisher.ended.then(() => this.#sessions.delete(id));
    this.#log.info('whip publisher accepted', {
      whip: id,
      streamId: lease.streamId,
      epoch: lease.epoch,
      remote: req.remoteAddress,
      tracks: shaped.tracks.map((t) => `${t.kind}:${t.codec.name}/${t.codec.payloadType}`),
    });
    o.onPublisher(publisher, token);
    return sessionCreated(`${this.prefix}/sessions/${id}`, answer, o.iceServers, etag);
  }

  async #resource(req: SignallingRequest, id: string): Promise<SignallingResponse> {
    const session = this.#sessions.get(id);
    if (!session) throw new HttpError(404, 'not_found', 'no such WHIP session');
    if (req.method === 'OPTIONS') return SESSION_OPTIONS;
    if (req.method !== 'PATCH' && req.method !== 'DELETE') {
      throw new HttpError(405, 'method_not_allowed', 'a WHIP session takes PATCH and DELETE', { allow: 'OPTIONS, PATCH, DELETE' });
    }
    // The resource is the publisher's: only the token that created it may change or end it.
    const presented = hashToken(bearer(req));
    if (!timingSafeEqual(presented, session.tokenHash))
      throw new HttpError(401, 'unauthorized', 'not the token this session was created with', { 'www-authenticate': 'Bearer' });
    if (req.method === 'DELETE') {
      session.publisher.close('the publisher ended the WHIP session');
      return { status: 200 };
    }
    return this.#patch(req, session);
  }

  #patch(req: SignallingRequest, session: WhipSession): Promise<SignallingResponse> {
    const p = session.publisher;
    return applyTricklePatch(
      req,
      { etag: session.etag, remoteOffer: p.remoteOffer, addRemoteCandidate: (c, mid) => p.addRemoteCandidate(c, mid) },
      this.#opts.limits.maxOfferBytes,
      'WHIP',
    );
  }
}
