// The watch page's real-time rules (core/player/realtime-fallback.ts, page-params.ts): which refusal
// sends the viewer back to LL-HLS for how long, and which page address asks for real time.
import { describe, expect, it } from 'vitest';
import { parsePageUrl } from '../../core/player/page-params.ts';
import { realtimeFallback } from '../../core/player/realtime-fallback.ts';

describe('leaving real time for LL-HLS', () => {
  it('a full node (503) is tried again after its Retry-After (10 s without one)', () => {
    expect(realtimeFallback({ kind: 'refused', status: 503, code: 'at_capacity', retryAfterMs: 20_000 })).toEqual({
      message: expect.stringMatching(/full/),
      retryAfterMs: 20_000,
    });
    expect(realtimeFallback({ kind: 'refused', status: 503, code: 'realtime_unavailable', retryAfterMs: null }).retryAfterMs).toBe(10_000);
  });

  it('a stream without real time, or a refused viewer, is not tried again on this page', () => {
    expect(realtimeFallback({ kind: 'refused', status: 404, code: 'realtime_not_enabled', retryAfterMs: null }).retryAfterMs).toBeNull();
    expect(realtimeFallback({ kind: 'refused', status: 401, code: 'invalid_token', retryAfterMs: null }).retryAfterMs).toBeNull();
    expect(realtimeFallback({ kind: 'refused', status: 403, code: 'geo_blocked', retryAfterMs: null }).retryAfterMs).toBeNull();
  });

  it('not live yet, not on that node yet, too many offers: soon; unreachable (WebRTC blocked): much later; interrupted: 10 s', () => {
    expect(realtimeFallback({ kind: 'refused', status: 404, code: 'stream_not_here', retryAfterMs: null }).retryAfterMs).toBe(5000);
    expect(realtimeFallback({ kind: 'refused', status: 429, code: 'too_many_pending', retryAfterMs: 2000 }).retryAfterMs).toBe(2000);
    expect(realtimeFallback({ kind: 'unreachable' }).retryAfterMs).toBe(30_000);
    expect(realtimeFallback({ kind: 'lost' }).retryAfterMs).toBe(10_000);
    expect(realtimeFallback({ kind: 'no-media' }).message).toMatch(/low-latency HLS/);
  });

  it('?realtime=1 asks for real time on the watch page, never in a party', () => {
    expect(parsePageUrl('https://e.test/watch/st1?realtime=1').realtime).toBe(true);
    expect(parsePageUrl('https://e.test/watch/st1').realtime).toBe(false);
    expect(parsePageUrl('https://e.test/party/r1?stream=st1&realtime=1').realtime).toBe(false);
  });
});
