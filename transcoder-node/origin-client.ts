// The transcoder's side of the ingest protocol: signed requests to the origin Worker.
import {
  AuthorizeResponseSchema,
  HEADER_META,
  INGEST_PREFIX,
  endPath,
  pushPath,
  signIngestRequest,
  thumbnailPath,
  type AuthorizeResponse,
} from '../workers/lib/ingest-protocol.ts';

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
}

export class OriginClient {
  private readonly baseUrl: string;
  private readonly secret: string;
  private readonly timeoutMs: number;

  constructor(opts: OriginClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/$/, '');
    this.secret = opts.secret;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async authorize(streamKey: string, nodeId: string, region?: string): Promise<AuthorizeResponse> {
    const body = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId, region }));
    const json = await this.request('POST', `${INGEST_PREFIX}/authorize`, body, { 'content-type': 'application/json' });
    return AuthorizeResponseSchema.parse(json);
  }

  async push(streamId: string, epoch: number, rendition: string, file: string, bytes: Uint8Array, meta: unknown): Promise<void> {
    await this.request('PUT', pushPath(streamId, epoch, rendition, file), bytes, {
      'content-type': 'application/octet-stream',
      [HEADER_META]: JSON.stringify(meta),
    });
  }

  /** A JPEG of the top rendition, shown at `programDateTime`. */
  async pushThumbnail(streamId: string, epoch: number, seq: number, bytes: Uint8Array, programDateTime: number): Promise<void> {
    await this.request('PUT', thumbnailPath(streamId, epoch, seq), bytes, {
      'content-type': 'image/jpeg',
      [HEADER_META]: JSON.stringify({ programDateTime }),
    });
  }

  async end(streamId: string, epoch: number): Promise<void> {
    await this.request('POST', endPath(streamId, epoch), null, {});
  }

  private async request(method: string, path: string, body: Uint8Array | null, headers: Record<string, string>): Promise<unknown> {
    const signed = await signIngestRequest(this.secret, method, path, body);
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        body: body ?? undefined,
        headers: { ...headers, ...signed },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new OriginError(0, 'network', `${method} ${path}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new OriginError(res.status, e?.code ?? 'http_error', e?.message ?? `${method} ${path} answered ${res.status}`);
    }
    return json;
  }
}
