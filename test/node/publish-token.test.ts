// The publish token format (core/auth/publish-token.ts): it round-trips, names its stream, carries
// a session after the MAC, fits where a stream key goes, and verifies only with its stream's key.
import { describe, expect, it } from 'vitest';
import {
  isPublishToken,
  newPublishNonce,
  newPublishSession,
  parsePublishToken,
  publishTokenKey,
  publishTokenStream,
  signPublishToken,
  verifyPublishToken,
  withPublishSession,
  type PublishGrant,
} from '../../core/auth/publish-token.ts';

const grant: PublishGrant = { streamId: 'st0123456789abcd', expiresAt: 1_800_000_000, nonce: 'abcdefghijklmnop', use: 'session' };

describe('publish tokens', () => {
  it('round-trip: the parse gives back the grant, the session presented and what the MAC covers', async () => {
    const key = await publishTokenKey('root secret', 'a'.repeat(64));
    const token = await signPublishToken(grant, key);
    expect(token).toMatch(/^pt1\.st0123456789abcd\.1800000000\.abcdefghijklmnop\.s\.[A-Za-z0-9_-]{43}$/);
    expect(isPublishToken(token)).toBe(true);
    expect(isPublishToken('sk_abc')).toBe(false);
    expect(parsePublishToken(token)).toMatchObject({ ...grant, session: null, token });
    const session = newPublishSession();
    const presented = withPublishSession(token, session);
    expect(parsePublishToken(presented)).toMatchObject({ ...grant, session, token });
    expect(publishTokenStream(presented)).toBe('st0123456789abcd');
    expect(publishTokenStream('sk_not_a_token')).toBeNull();
    // The longest stream id with the longest session still fits authorize's 200 characters.
    const longest = withPublishSession(
      await signPublishToken({ ...grant, streamId: 'x'.repeat(64), expiresAt: 999_999_999_999 }, key),
      'y'.repeat(43),
    );
    expect(longest.length).toBeLessThanOrEqual(200);
    expect(parsePublishToken(longest)?.streamId).toBe('x'.repeat(64));
  });

  it('verifies with its stream key only; expiry and a missing session are refused with their codes', async () => {
    const key = await publishTokenKey('root secret', 'a'.repeat(64));
    const token = await signPublishToken(grant, key);
    const presented = parsePublishToken(withPublishSession(token, newPublishSession()))!;
    expect(await verifyPublishToken(presented, key, 1_700_000_000)).toEqual({ ok: true });
    const rotated = await publishTokenKey('root secret', 'b'.repeat(64));
    expect(await verifyPublishToken(presented, rotated, 1_700_000_000)).toMatchObject({ ok: false, code: 'invalid_publish_token' });
    const otherRoot = await publishTokenKey('another root', 'a'.repeat(64));
    expect(await verifyPublishToken(presented, otherRoot, 1_700_000_000)).toMatchObject({ ok: false, code: 'invalid_publish_token' });
    expect(await verifyPublishToken(presented, key, 1_800_000_000)).toMatchObject({ ok: false, code: 'publish_token_expired' });
    expect(await verifyPublishToken(parsePublishToken(token)!, key, 1_700_000_000)).toMatchObject({
      ok: false,
      code: 'publish_token_session',
    });
  });

  it('refuses what is not a token, and sessions that are too short', () => {
    for (const bad of [
      '',
      'pt1.',
      'pt1.st.1.abcdefghijklmnop.r.short',
      'pt2.st.1.abcdefghijklmnop.r.' + 'A'.repeat(43),
      'pt1.st.1.abcdefghijklmnop.x.' + 'A'.repeat(43),
      'pt1.st.1.abcdefghijklmnop.r.' + 'A'.repeat(43) + '.short',
    ]) {
      expect(parsePublishToken(bad), bad).toBeNull();
    }
    expect(() => withPublishSession('pt1.x', 'short')).toThrow(RangeError);
    expect(newPublishNonce()).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });
});
