// The RTMP listener's per-address rules, pure: connections at once per address, a token bucket of
// attempts per address, IPv6 counted per /64, and a table that forgets addresses gone quiet.
import { describe, expect, it } from 'vitest';
import { AddressLimiter, addressKey } from '../../transcoder-node/rtmp/address-limits.ts';

const limits = { maxConnectionsPerAddress: 3, acceptBurstPerAddress: 5, acceptRatePerAddress: 2 };
const TOO_MANY = { ok: false, reason: 'too many connections from this address' };
const TOO_OFTEN = { ok: false, reason: 'connecting too often from this address' };

describe('AddressLimiter', () => {
  it('admits up to maxConnectionsPerAddress at once; a release frees a slot; other addresses are not affected', () => {
    const limiter = new AddressLimiter(limits);
    expect([1, 2, 3, 4].map(() => limiter.admit('198.51.100.7', 0))).toEqual([{ ok: true }, { ok: true }, { ok: true }, TOO_MANY]);
    expect(limiter.admit('198.51.100.8', 0)).toEqual({ ok: true });
    limiter.release('198.51.100.7');
    expect(limiter.admit('198.51.100.7', 0)).toEqual({ ok: true });
  });

  it('gives an address its burst of attempts, refused ones included, then refills at the rate', () => {
    const limiter = new AddressLimiter(limits);
    const attempt = (now: number) => {
      const a = limiter.admit('203.0.113.1', now);
      if (a.ok) limiter.release('203.0.113.1');
      return a;
    };
    expect([0, 0, 0, 0, 0, 0].map(attempt)).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: true }, { ok: true }, TOO_OFTEN]);
    expect(attempt(499)).toEqual(TOO_OFTEN); // 0.998 of a token
    expect(attempt(500)).toEqual({ ok: true }); // 2 per second: one token after 500 ms
    expect(attempt(500)).toEqual(TOO_OFTEN);
    // A long silence refills the burst, never more.
    expect(Array.from({ length: 6 }, () => attempt(3_600_000))).toEqual([
      { ok: true },
      { ok: true },
      { ok: true },
      { ok: true },
      { ok: true },
      TOO_OFTEN,
    ]);

    // Attempts refused for holding too many connections spend tokens too.
    const held = new AddressLimiter(limits);
    for (let i = 0; i < 3; i++) held.admit('203.0.113.2', 0);
    expect(held.admit('203.0.113.2', 0)).toEqual(TOO_MANY);
    expect(held.admit('203.0.113.2', 0)).toEqual(TOO_MANY);
    expect(held.admit('203.0.113.2', 0)).toEqual(TOO_OFTEN);
  });

  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');

    const limiter = new AddressLimiter(limits);
    expect(['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:2:1::c', '2001:db8:1:2::d'].map((a) => limiter.admit(a, 0))).toEqual([
      { ok: true },
      { ok: true },
      { ok: true },
      TOO_MANY,
    ]);
    expect(limiter.admit('2001:db8:1:3::a', 0)).toEqual({ ok: true });
    expect(limiter.admit('::ffff:192.0.2.1', 0)).toEqual({ ok: true });
    limiter.release('192.0.2.1');
    expect(limiter.admit('192.0.2.1', 0)).toEqual({ ok: true });
  });

  it('forgets addresses with nothing open and a full bucket, so the table stays bounded', () => {
    const limiter = new AddressLimiter(limits);
    // 100,000 addresses each connect once and leave, a second apart per thousand.
    for (let i = 0; i < 100_000; i++) {
      const address = `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
      limiter.admit(address, Math.floor(i / 1000) * 1000);
      limiter.release(address);
    }
    // Only addresses within one refill time (a token at 2 per second: the last ~1,000) are still
    // tracked, plus the sweep's slack: never more than twice what survived the last sweep.
    expect(limiter.size).toBeLessThanOrEqual(4096);

    // An address that still holds a connection is never forgotten.
    const holding = new AddressLimiter(limits);
    holding.admit('10.9.9.9', 0);
    for (let i = 0; i < 5000; i++) holding.admit(`10.8.${i >> 8}.${i & 0xff}`, 10_000_000);
    for (let i = 0; i < 5000; i++) holding.release(`10.8.${i >> 8}.${i & 0xff}`);
    for (let i = 0; i < 2; i++) holding.admit('10.9.9.9', 20_000_000);
    expect(holding.admit('10.9.9.9', 20_000_000)).toEqual(TOO_MANY);
  });

  it('refuses limits that are not positive numbers', () => {
    expect(() => new AddressLimiter({ ...limits, acceptRatePerAddress: Number('x') })).toThrow(
      'acceptRatePerAddress must be a positive number, not NaN',
    );
    expect(() => new AddressLimiter({ ...limits, maxConnectionsPerAddress: 0 })).toThrow(RangeError);
  });
});
