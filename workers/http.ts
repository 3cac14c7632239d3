// One error shape for every route: `{ "error": { "code", "message" } }` with the right status,
// and the one place where a Durable Object's refusal (an RpcError) becomes an HTTP answer.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import type { RpcError } from '../core/contracts/rpc-error.ts';

export class HttpError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  /** Headers the error answer carries besides the JSON ones (CORS on playback, Retry-After). */
  readonly headers: HeadersInit | undefined;
  constructor(status: ContentfulStatusCode, code: string, message: string, headers?: HeadersInit) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * A Durable Object's refusal as HTTP: its status and code pass through unchanged (the object
 * chose them from the same table of meanings), and a 503 (a held request timed out, a
 * predecessor did not come) tells the client it may retry in a second. Throw it from a route,
 * or answer with `rpcErrorResponse`; both give the same response.
 */
export function rpcError(e: RpcError, headers?: HeadersInit): HttpError {
  const h = new Headers(headers);
  if (e.status === 503) h.set('retry-after', '1');
  return new HttpError(e.status, e.code, e.message, h);
}

/** `rpcError` as a response, for routes that answer rather than throw. */
export function rpcErrorResponse(e: RpcError, headers?: HeadersInit): Response {
  const err = rpcError(e, headers);
  return errorResponse(err.status, err.code, err.message, err.headers);
}

export function errorResponse(status: number, code: string, message: string, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set('content-type', 'application/json; charset=utf-8');
  h.set('cache-control', 'no-store');
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: h });
}

/**
 * Whether a client takes gzip, from its Accept-Encoding (RFC 9110 §12.5.3): named with a q above
 * 0, or covered by `*`. No header, `identity`, or `gzip;q=0` mean no.
 */
export function acceptsGzip(acceptEncoding: string | null | undefined): boolean {
  if (!acceptEncoding) return false;
  let star = false;
  for (const item of acceptEncoding.toLowerCase().split(',')) {
    const [coding, ...params] = item.trim().split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)).find(Boolean);
    const weight = q ? Number(q[1]) : 1;
    if (coding === 'gzip' || coding === 'x-gzip') return weight > 0;
    if (coding === '*') star = weight > 0;
  }
  return star;
}

/**
 * What the client itself sent as Accept-Encoding. Cloudflare (and wrangler dev, like it) hands
 * the Worker `br, gzip` whatever the client said and keeps the client's own value, empty when it
 * sent none, in `request.cf.clientAcceptEncoding`.
 */
export function clientAcceptEncoding(req: Request): string | null {
  const original = (req.cf as { clientAcceptEncoding?: string } | undefined)?.clientAcceptEncoding;
  return original !== undefined ? original : req.headers.get('accept-encoding');
}

/**
 * A text answer (a playlist) compressed only for a client that accepts gzip: the runtime gzips a
 * body whose Content-Encoding is set (unless it was compressed beforehand, `gzipped`), and
 * `Vary: Accept-Encoding` keeps any cache in between from handing one client's encoding to
 * another, as Cloudflare's own edge does.
 */
export function negotiatedTextResponse(req: Request, text: string, headers: Headers, status = 200, gzipped?: ArrayBuffer): Response {
  headers.append('vary', 'Accept-Encoding');
  if (!acceptsGzip(clientAcceptEncoding(req))) return new Response(text, { status, headers });
  headers.set('content-encoding', 'gzip');
  // Compressed once already (a text many viewers get): sent as it is, not compressed again.
  if (gzipped) return new Response(gzipped, { status, headers, encodeBody: 'manual' });
  return new Response(text, { status, headers });
}

/** The gzip bytes of a text, for a text served many times (negotiatedTextResponse's `gzipped`). */
export async function gzipText(text: string): Promise<ArrayBuffer> {
  return new Response(new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
}

/** Hono `onError`: HttpErrors keep their status; anything else is a 500 without internals. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof HttpError) return errorResponse(err.status, err.code, err.message, err.headers);
  console.error(JSON.stringify({ level: 'error', msg: 'unhandled error', path: c.req.path, error: String(err?.stack ?? err) }));
  return errorResponse(500, 'internal_error', 'internal error');
}

/** Parses with a zod schema or throws a 400 naming the first problem. */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new HttpError(400, 'invalid_request', `invalid ${what}${where}: ${issue?.message ?? 'malformed'}`);
  }
  return r.data;
}

/** Reads a JSON body (bounded) or throws 400/413. */
export async function readJson(req: Request, maxBytes = 64 * 1024): Promise<unknown> {
  const len = Number(req.headers.get('content-length') ?? '0');
  if (len > maxBytes) throw new HttpError(413, 'payload_too_large', `body larger than ${maxBytes} bytes`);
  const text = await req.text();
  if (text.length > maxBytes) throw new HttpError(413, 'payload_too_large', `body larger than ${maxBytes} bytes`);
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
}

/** Constant-time string comparison (for bearer tokens). */
export function timingSafeEqualString(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const ab = enc.encode(a);
  const bb = enc.encode(b);
  // Compare against itself on a length mismatch so the time does not depend on where they differ.
  if (ab.byteLength !== bb.byteLength) {
    crypto.subtle.timingSafeEqual(ab, ab);
    return false;
  }
  return crypto.subtle.timingSafeEqual(ab, bb);
}

/** One cookie's value from a `Cookie` header, or undefined. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
