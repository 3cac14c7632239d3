// `?start=` (core/live/start-over.ts): what a start-over request may say, and its canonical form.
import { describe, expect, it } from 'vitest';
import { parseStartParam } from '../../core/live/start-over.ts';

describe('start-over parameter', () => {
  it('accepts "beginning" and ISO 8601 date-times with a zone, canonicalised for cache keys', () => {
    expect(parseStartParam([])).toEqual({ ok: true });
    expect(parseStartParam(['beginning'])).toEqual({ ok: true, start: 'beginning', query: 'start=beginning' });
    const t = Date.UTC(2026, 10, 21, 12, 0, 1, 500);
    expect(parseStartParam(['2026-11-21T12:00:01.5Z'])).toEqual({ ok: true, start: t, query: 'start=2026-11-21T12:00:01.500Z' });
    expect(parseStartParam(['2026-11-21T13:00:01.500+01:00'])).toEqual({ ok: true, start: t, query: 'start=2026-11-21T12:00:01.500Z' });
  });

  it('refuses anything else', () => {
    for (const v of ['', 'now', '2026-11-21', '2026-11-21T12:00:00', '1763726400000', '2026-13-45T99:00:00Z']) {
      expect(parseStartParam([v]).ok, v).toBe(false);
    }
    expect(parseStartParam(['beginning', 'beginning']).ok).toBe(false);
  });
});
