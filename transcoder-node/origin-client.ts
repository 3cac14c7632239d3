// The transcoder's side of the ingest protocol: signed requests to the origin Worker.
// Every push is one small HTTP request, several a second per rendition, so the client is kept
// cheap: node:http(s) on keep-alive connections (fetch costs about three times the CPU per
// request here), the body hashed and signed with node:crypto (synchronous, no copy), and
// `accept-encoding: identity` so a two-field JSON answer is never gzipped and gunzipped. Every
// request is signed with its metadata header, a timestamp and a fresh nonce.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  AuthorizeResponseSchema,
  HEADER_META,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  INGEST_PREFIX,
  canonicalRequest,
  endPath,
  pushPath,
  thumbnailPath,
  type AuthorizeResponse,
} from '../core/contracts/ingest-protocol.ts';
import {
  RestreamSyncResponseSchema,
  restreamSyncPath,
  type RestreamSyncRequest,
  type RestreamSyncResponse,
} from '../core/contracts/restream.ts';

export class OriginError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
  /** Worth trying again: the network, the origin's 5xx or rate limits; never a 4xx verdict. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

export interface OriginClientOptions {
  baseUrl: string;
  secret: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Told of every failed media or thumbnail push attempt (the node's retry and refusal counters). */
  onPushError?: (err: OriginError) => void;
}

const EMPTY = new Uint8Array(0);

/**
 * The headers of a signed request: `headers` (the `x-edgelive-*` ones are signed), a timestamp, a
 * fresh nonce and the signature (the same HMAC as `signIngestRequest`, computed with node:crypto).
 */
export function signRequestSync(
  secret: string,
  method: string,
  path: string,
  body: Uint8Array | null,
  headers: Record<string, string> = {},
  now = Date.now(),
  nonce = randomBytes(16).toString('hex'),
): Record<string, string> {
  const out: Record<string, string> = { ...headers, [HEADER_TIMESTAMP]: String(now), [HEADER_NONCE]: nonce };
  const bodyHash = createHash('sha256')
    .update(body ?? EMPTY)
    .digest('hex');
  out[HEADER_SIGNATURE] = createHmac('sha256', secret)
    .update(canonicalRequest(method, path, Object.entries(out), bodyHash))
    .digest('hex');
  return out;
}

export class OriginClient {
  private readonly base: URL;
  private readonly secret: string;
  private readonly timeoutMs: number;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly onPushError: (err: OriginError) => void;

  constructor(opts: OriginClientOptions) {
    this.base = new URL(opts.baseUrl.replace(/\/$/, ''));
    this.secret = opts.secret;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.onPushError = opts.onPushError ?? (() => {});
    // Keep-alive: a push every 200 ms per rendition reuses its connection instead of a new TCP
    // (and TLS) handshake each time. No socket limit: the uploaders bound what is in flight.
    const https = this.base.protocol === 'https:';
    this.agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.send = (https ? httpsRequest : httpRequest) as typeof httpRequest;
  }

  /** `continues`: the epoch this node's own session held, when it restarts its ladder (AuthorizeRequest). */
  async authorize(streamKey: string, nodeId: string, region?: string, continues?: number): Promise<AuthorizeResponse> {
    const body = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId, region, continues }));
    const json = await this.request('POST', `${INGEST_PREFIX}/authorize`, body, { 'content-type': 'application/json' });
    return AuthorizeResponseSchema.parse(json);
  }

  async push(streamId: string, epoch: number, rendition: string, file: string, bytes: Uint8Array, meta: unknown): Promise<void> {
    await this.observed(
      this.request('PUT', pushPath(streamId, epoch, rendition, file), bytes, {
        'content-type': 'application/octet-stream',
        [HEADER_META]: JSON.stringify(meta),
      }),
    );
  }

  /** A JPEG of the top rendition, shown at `programDateTime`. */
  async pushThumbnail(streamId: string, epoch: number, seq: number, bytes: Uint8Array, programDateTime: number): Promise<void> {
    await this.observed(
      this.request('PUT', thumbnailPath(streamId, epoch, seq), bytes, {
        'content-type': 'image/jpeg',
        [HEADER_META]: JSON.stringify({ programDateTime }),
      }),
    );
  }

  async end(streamId: string, epoch: number): Promise<void> {
    await this.request('POST', endPath(streamId, epoch), null, {});
  }

  /** Reports the stream's restream statuses; answers the destinations to forward to now. */
  async syncRestreams(streamId: string, epoch: number, report: RestreamSyncRequest): Promise<RestreamSyncResponse> {
    const body = new TextEncoder().encode(JSON.stringify(report));
    const json = await this.request('POST', restreamSyncPath(streamId, epoch), body, { 'content-type': 'application/json' });
    return RestreamSyncResponseSchema.parse(json);
  }

  private async observed(push: Promise<unknown>): Promise<void> {
    try {
      await push;
    } catch (err) {
      if (err instanceof OriginError) this.onPushError(err);
      throw err;
    }
  }

  /** Closes the idle keep-alive connections (at shutdown). */
  close(): void {
    this.agent.destroy();
  }

  private async request(method: string, path: string, body: Uint8Array | null, headers: Record<string, string>): Promise<unknown> {
    // Signed per attempt: a retry is a new request (new timestamp, new nonce), never a replay.
    const signed = signRequestSync(this.secret, method, path, body, headers);
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.exchange(method, path, body, signed));
    } catch (err) {
      throw new OriginError(0, 'network', `${method} ${path}: ${(err as Error).message}`);
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (status < 200 || status > 299) {
      const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new OriginError(status, e?.code ?? 'http_error', e?.message ?? `${method} ${path} answered ${status}`);
    }
    return json;
  }

  /** One HTTP exchange; rejects on network errors and after the timeout. */
  private exchange(
    method: string,
    path: string,
    body: Uint8Array | null,
    headers: Record<string, string>,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = this.send(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path: this.base.pathname.replace(/\/$/, '') + path,
          method,
          agent: this.agent,
          headers: { ...headers, 'content-length': String(body?.byteLength ?? 0), 'accept-encoding': 'identity' },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', fail);
          res.on('close', () => {
            if (!res.complete) fail(new Error('connection closed before the whole answer'));
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      function fail(err: Error): void {
        clearTimeout(timer);
        reject(err);
      }
      req.on('error', fail);
      req.end(body ?? undefined);
    });
  }
}
