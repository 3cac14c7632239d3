// The Go-live page's pure decisions (core/player/golive.ts): its address, the codec order of its
// offer, the reconnection back-off, takeover against reconnection, and the elapsed time.
import { describe, expect, it } from 'vitest';
import { publishTokenKey, signPublishToken, withPublishSession } from '../../core/auth/publish-token.ts';
import {
  afterConnectionLost,
  formatElapsed,
  goLiveRefusal,
  parseGoLiveUrl,
  preferH264,
  reconnectDelayMs,
} from '../../core/player/golive.ts';

const token = await signPublishToken(
  { streamId: 'stA', expiresAt: 4_000_000_000, nonce: 'nnnnnnnnnnnnnnnn', use: 'session' },
  await publishTokenKey('root', 'hash'),
);

describe('parseGoLiveUrl', () => {
  it('reads the stream from the path and the token from the fragment', () => {
    expect(parseGoLiveUrl(`https://live.test/golive/stA#token=${token}`)).toEqual({
      streamId: 'stA',
      token,
      sessionBound: true,
      problem: null,
      replaceUrl: null,
    });
  });

  it('takes a token in the query too, and moves it into the fragment', () => {
    const p = parseGoLiveUrl(`https://live.test/golive/stA?token=${token}&x=1`);
    expect(p).toMatchObject({ streamId: 'stA', token, problem: null });
    expect(p.replaceUrl).toBe(`https://live.test/golive/stA?x=1#token=${token}`);
  });

  it('names what is wrong: no stream, no token, a malformed one, one for another stream', () => {
    expect(parseGoLiveUrl(`https://live.test/golive/#token=${token}`).problem).toBe('no-stream');
    expect(parseGoLiveUrl('https://live.test/golive/stA').problem).toBe('no-token');
    expect(parseGoLiveUrl('https://live.test/golive/stA#token=sk_the_stream_key').problem).toBe('malformed-token');
    // A session is the page's own to add, never part of a link.
    expect(parseGoLiveUrl(`https://live.test/golive/stA#token=${withPublishSession(token, 'sssssssssssssssssss')}`).problem).toBe(
      'malformed-token',
    );
    const wrong = parseGoLiveUrl(`https://live.test/golive/stB#token=${token}`);
    expect(wrong).toMatchObject({ problem: 'wrong-stream', token: null });
    expect(goLiveRefusal(wrong.problem!).title).toBe('This link is for another stream');
  });
});

describe('preferH264', () => {
  it('puts H.264 packetization-mode 1 first, constrained baseline before high, and keeps the rest in order', () => {
    const codecs = [
      { mimeType: 'video/VP8', clockRate: 90000 },
      { mimeType: 'video/rtx', clockRate: 90000, sdpFmtpLine: 'apt=96' },
      { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f' },
      { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f' },
      { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' },
      { mimeType: 'video/AV1', clockRate: 90000 },
    ];
    const order = preferH264(codecs).map((c) =>
      `${c.mimeType} ${/profile-level-id=(\w+)/.exec(c.sdpFmtpLine ?? '')?.[1] ?? ''} ${/packetization-mode=(\d)/.exec(c.sdpFmtpLine ?? '')?.[1] ?? ''}`.trim(),
    );
    expect(order).toEqual(['video/H264 42e01f 1', 'video/H264 640c1f 1', 'video/VP8', 'video/rtx', 'video/H264 42e01f 0', 'video/AV1']);
  });
});

describe('reconnection', () => {
  it('backs off 1, 2, 4, 8, then 10 s', () => {
    expect([1, 2, 3, 4, 5, 9].map(reconnectDelayMs)).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('publishes again unless a newer epoch holds the live stream (another publisher took it over)', () => {
    expect(afterConnectionLost(4, { status: 'live', epoch: 5 })).toBe('taken-over');
    expect(afterConnectionLost(4, { status: 'live', epoch: 4 })).toBe('reconnect');
    expect(afterConnectionLost(4, { status: 'ended', epoch: null })).toBe('reconnect');
    expect(afterConnectionLost(4, null)).toBe('reconnect');
    expect(afterConnectionLost(null, { status: 'live', epoch: 9 })).toBe('reconnect');
  });
});

describe('formatElapsed', () => {
  it('shows minutes and seconds, hours once there are any', () => {
    expect([0, 4_999, 65_000, 754_000, 3_723_000].map(formatElapsed)).toEqual(['0:00', '0:04', '1:05', '12:34', '1:02:03']);
  });
});
