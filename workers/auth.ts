// Bearer-token check for the admin API (constant-time, via Web Crypto's timingSafeEqual).
import type { MiddlewareHandler } from 'hono';
import type { Env } from './env.ts';
import { HttpError, timingSafeEqualString } from './http.ts';

export function adminAuth(): MiddlewareHandler<{ Bindings: Env }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!c.env.ADMIN_TOKEN) throw new HttpError(500, 'misconfigured', 'ADMIN_TOKEN is not set');
    if (!token || !timingSafeEqualString(token, c.env.ADMIN_TOKEN)) {
      throw new HttpError(401, 'unauthorized', 'a valid admin bearer token is required');
    }
    await next();
  };
}
