// The media node's HTTP listener for WebRTC signalling (WHIP, WHEP, the voice SFU): routes
// by path prefix, answers CORS for the browser pages of the Worker's origin, bounds request
// bodies, and turns every error into `{ "error": { "code", "message" } }` JSON.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export interface SignallingRequest {
  method: string;
  /** The path without the route's prefix, e.g. `/sessions/abc` under `/whip`. */
  path: string;
  /** The query string's parameters (WHEP's ticket). */
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  remoteAddress: string;
  /** Reads the body as text; 413 (HttpError) past `limit` bytes, without reading more than that. */
  readBody(limit: number): Promise<string>;
}

export interface SignallingResponse {
  status: number;
  headers?: Record<string, string | string[]>;
  /** Text as is (e.g. SDP, with its content-type in headers), or a value sent as JSON. */
  body?: string | object;
}

export interface SignallingRoute {
  /** Path prefix this route owns, e.g. `/whip`. */
  prefix: string;
  handle(req: SignallingRequest): Promise<SignallingResponse>;
  /** Headers browsers may read from this route's answers (CORS Access-Control-Expose-Headers). */
  exposeHeaders?: string[];
  /**
   * Pages of any origin may call this route (WHEP: players on any site, authorised by a ticket in
   * the URL, never a cookie), whatever `corsOrigins` allows for the others.
   */
  anyOrigin?: boolean;
}

export interface SignallingServerOptions {
  host: string;
  port: number;
  /** Origins whose pages may call the node (the Worker's); `*` allows any page (bearer auth, no cookies). */
  corsOrigins: string[];
  logger: Logger;
  routes: SignallingRoute[];
}

const CORS_METHODS = 'GET, POST, PATCH, DELETE, OPTIONS';
const CORS_HEADERS = 'Authorization, Content-Type, If-Match';

export class SignallingServer {
  readonly #opts: SignallingServerOptions;
  readonly #server: Server;

  constructor(opts: SignallingServerOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => void this.#dispatch(req, res));
    // Signalling requests are small and quick: a slow or silent client does not hold a socket long.
    this.#server.requestTimeout = 15_000;
    this.#server.headersTimeout = 10_000;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #cors(req: IncomingMessage, route: SignallingRoute | undefined): Record<string, string> {
    const origin = req.headers.origin;
    const allowed = this.#opts.corsOrigins;
    if (!origin || !(route?.anyOrigin || allowed.includes('*') || allowed.includes(origin))) return {};
    return {
      'access-control-allow-origin': origin,
      vary: 'Origin',
      'access-control-expose-headers': (route?.exposeHeaders ?? []).join(', '),
    };
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://node');
    const route = this.#opts.routes.find((r) => url.pathname === r.prefix || url.pathname.startsWith(r.prefix + '/'));
    const cors = this.#cors(req, route);
    const send = (status: number, headers: Record<string, string | string[]>, body?: string | object) => {
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        ...cors,
        ...(typeof body === 'object' ? { 'content-type': 'application/json' } : {}),
        'cache-control': 'no-store',
        ...headers,
      });
      res.end(text);
    };
    try {
      if (!route) throw new HttpError(404, 'not_found', `no route for ${url.pathname}`);
      // CORS preflight: the route still answers OPTIONS itself (WHIP defines it), with these added.
      const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
      const answer = await route.handle({
        method: req.method ?? 'GET',
        path: url.pathname.slice(route.prefix.length) || '/',
        query: url.searchParams,
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress ?? 'unknown',
        readBody: (limit) => readBody(req, limit),
      });
      const extra: Record<string, string> =
        preflight && cors['access-control-allow-origin']
          ? { 'access-control-allow-methods': CORS_METHODS, 'access-control-allow-headers': CORS_HEADERS, 'access-control-max-age': '600' }
          : {};
      send(answer.status, { ...extra, ...answer.headers }, answer.body);
    } catch (err) {
      if (err instanceof HttpError) {
        // A refused body is not read to its end: close the connection rather than drain it.
        if (err.status === 413) res.setHeader('connection', 'close');
        return send(err.status, err.headers, { error: { code: err.code, message: err.message } });
      }
      this.#opts.logger.error('signalling request failed', { method: req.method, path: url.pathname, error: err });
      send(500, {}, { error: { code: 'internal_error', message: 'the media node could not handle the request' } });
    }
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new HttpError(413, 'too_large', `the body is over ${limit} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        return reject(new HttpError(413, 'too_large', `the body is over ${limit} bytes`));
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}
