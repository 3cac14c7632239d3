// Rate limiting through Cloudflare's Rate Limiting binding (`[[ratelimits]]` in wrangler.toml):
// counters per Cloudflare location, approximate by design; a brake on abuse, not an accounting.
import type { Context, MiddlewareHandler } from 'hono';
import type { Env } from '../env.ts';
import { errorResponse } from '../http.ts';

export interface RateLimitOptions<E extends { Bindings: Env }> {
  /** The binding to count against. */
  limiter: (env: Env) => RateLimit;
  /** What one budget belongs to (a stream, a client): requests with the same key share it. */
  key: (c: Context<E>) => string;
  /** Period of the binding's `simple` limit, sent as `Retry-After`. */
  periodSeconds: 10 | 60;
}

export function rateLimit<E extends { Bindings: Env }>(opts: RateLimitOptions<E>): MiddlewareHandler<E> {
  return async (c, next) => {
    const { success } = await opts.limiter(c.env).limit({ key: opts.key(c) });
    if (!success) {
      return errorResponse(429, 'rate_limited', `too many requests; retry in ${opts.periodSeconds} s`, {
        'retry-after': String(opts.periodSeconds),
      });
    }
    await next();
  };
}

/**
 * The client's address, the only identity a request has before it is authenticated (which is
 * what a brake on guessing the admin token needs). Cloudflare sets `cf-connecting-ip`.
 */
export function clientAddress(c: Context): string {
  return c.req.header('cf-connecting-ip') ?? 'unknown';
}
