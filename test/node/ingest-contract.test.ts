// The ingest contract's checks that need no origin (core/contracts/ingest-protocol.ts,
// core/auth/replay-guard.ts): the codecs grammar, the signature over every x-edgelive header,
// and the nonce memory with its bounds.
import { describe, expect, it } from 'vitest';
import {
  CodecsSchema,
  HEADER_META,
  HEADER_NONCE,
  SIGNATURE_WINDOW_MS,
  signIngestRequest,
  verifyIngestRequest,
} from '../../core/contracts/ingest-protocol.ts';
import { ReplayGuard, admitStored } from '../../core/auth/replay-guard.ts';

describe('codecs (RFC 6381)', () => {
  it('takes the codec strings encoders write, alone or in a list', () => {
    for (const c of [
      'avc1.64001f',
      'avc1.4D401E',
      'avc3.640028',
      'hvc1.1.6.L93.B0',
      'hev1.2.4.L120.90',
      'av01.0.04M.08',
      'vp09.00.10.08',
      'mp4a.40.2',
      'mp4a.40.5',
      'ac-3',
      'ec-3',
      'Opus',
      'fLaC',
      'avc1.64001f,mp4a.40.2',
    ]) {
      expect(CodecsSchema.safeParse(c).success, c).toBe(true);
    }
  });

  it('refuses quotes, line breaks, spaces, empty elements, long lists and anything else', () => {
    for (const c of [
      '',
      'avc',
      'avc1.',
      'avc1..2',
      'avc1.64001f"',
      'avc1.64001f\n#EXT-X-STREAM-INF:BANDWIDTH=1',
      'avc1.64001f, mp4a.40.2',
      'avc1 64001f',
      'a,b,c,d,e',
      '-vc1.1',
      'avc1.64001f,',
      'avc1.64001f;x',
      'mp4a.40.2,mp4a.40.2,mp4a.40.2,mp4a.40.2,mp4a.40.2',
      'x'.repeat(101),
    ]) {
      expect(CodecsSchema.safeParse(c).success, JSON.stringify(c)).toBe(false);
    }
  });
});

describe('the signature covers every x-edgelive header', () => {
  it('a changed, added or removed x-edgelive header breaks it; other headers do not', async () => {
    const body = new Uint8Array([1, 2, 3]);
    const now = 1_800_000_000_000;
    const signed = await signIngestRequest('s', 'PUT', '/p', body, { headers: { [HEADER_META]: '{"a":1}', 'content-type': 'x/y' }, now });
    const verify = (h: Headers) => verifyIngestRequest('s', 'PUT', '/p', h, body, now);
    expect(await verify(new Headers(signed))).toEqual({ ok: true, nonce: signed[HEADER_NONCE], timestamp: now });
    expect((await verify(new Headers({ ...signed, 'content-type': 'other' }))).ok).toBe(true);
    expect((await verify(new Headers({ ...signed, [HEADER_META]: '{"a":2}' }))).ok).toBe(false);
    expect((await verify(new Headers({ ...signed, 'x-edgelive-more': '1' }))).ok).toBe(false);
    const without = new Headers(signed);
    without.delete(HEADER_META);
    expect((await verify(without)).ok).toBe(false);
    expect(await verifyIngestRequest('s', 'PUT', '/p', new Headers({ ...signed, [HEADER_NONCE]: 'short' }), body, now)).toEqual({
      ok: false,
      reason: 'malformed nonce',
    });
    expect(await verifyIngestRequest('s', 'PUT', '/p', new Headers(signed), body, now + SIGNATURE_WINDOW_MS + 1)).toEqual({
      ok: false,
      reason: 'timestamp outside the replay window',
    });
  });
});

describe('the nonce memory', () => {
  it('admits a nonce once within its window, forgets it after, and is bounded', () => {
    const guard = new ReplayGuard(1000, 3);
    expect(guard.admit({ nonce: 'a', timestamp: 0 }, 0)).toBe('fresh');
    expect(guard.admit({ nonce: 'a', timestamp: 0 }, 500)).toBe('replayed');
    expect(guard.admit({ nonce: 'b', timestamp: 100 }, 500)).toBe('fresh');
    expect(guard.admit({ nonce: 'c', timestamp: 200 }, 500)).toBe('fresh');
    // Full of nonces still in their window: refuse rather than forget one (a replay would pass).
    expect(guard.admit({ nonce: 'd', timestamp: 300 }, 500)).toBe('full');
    // Past a's window (timestamp + window + 1 s of clock slack): it is forgotten, and room is made.
    expect(guard.admit({ nonce: 'd', timestamp: 2100 }, 2050)).toBe('fresh');
    expect(guard.size).toBe(3);
    expect(guard.admit({ nonce: 'z', timestamp: 9000 }, 9000)).toBe('fresh');
    expect(guard.size).toBe(1);
  });

  it('the stored variant (authorize) keeps only the nonces still in their window', () => {
    let list = admitStored([], { nonce: 'a', timestamp: 0 }, 0, 1000);
    expect(list).toEqual([{ nonce: 'a', until: 2000 }]);
    expect(admitStored(list as never, { nonce: 'a', timestamp: 0 }, 1500, 1000)).toBe('replayed');
    list = admitStored(list as never, { nonce: 'b', timestamp: 2500 }, 2500, 1000);
    expect(list).toEqual([{ nonce: 'b', until: 4500 }]);
  });
});
