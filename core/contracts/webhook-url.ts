// Which URLs a webhook may be sent to: https only, and never an address inside a network
// (private, loopback, link-local, and the other special-purpose ranges) written as an IP literal
// in any of the forms a URL parser accepts (0x7f.1, 2130706433, [::ffff:127.0.0.1]).
// A hostname is not resolved here: the Worker cannot see DNS, and Cloudflare's fetch does not
// reach private addresses from a deployed Worker anyway.

/** Why `url` is refused as a webhook endpoint, or null when it is acceptable. */
export function webhookUrlProblem(url: string, opts: { allowPrivate?: boolean } = {}): string | null {
  if (!URL.canParse(url)) return 'not a URL';
  const u = new URL(url);
  if (u.protocol !== 'https:' && !(opts.allowPrivate && u.protocol === 'http:')) return 'must be an https URL';
  if (u.username || u.password) return 'must not carry credentials (user:password@)';
  if (opts.allowPrivate) return null;
  // The WHATWG parser has already turned every IPv4 form into dotted decimal and every IPv6 one
  // into its compressed hex form, so these two shapes are all there is to check.
  const host = u.hostname.toLowerCase();
  if (host.startsWith('[')) {
    const v6 = parseIpv6(host.slice(1, -1));
    if (!v6) return 'has an IPv6 address that cannot be read';
    const why = ipv6Problem(v6);
    return why ? `points at ${why} address ${host}` : null;
  }
  const v4 = parseDottedIpv4(host);
  if (v4 !== null) {
    const why = ipv4Problem(v4);
    return why ? `points at ${why} address ${host}` : null;
  }
  if (host === 'localhost' || host.endsWith('.localhost') || host === 'localhost.') return 'points at localhost';
  if (!host.includes('.')) return 'needs a fully qualified host name';
  return null;
}

/** A dotted-decimal IPv4 address as a 32-bit number, or null when `host` is not one. */
export function parseDottedIpv4(host: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** IPv4 ranges no webhook may reach (RFC 6890 and friends), as [first octets, prefix length, what]. */
const IPV4_REFUSED: ReadonlyArray<readonly [number, number, string]> = [
  [ip4(0, 0, 0, 0), 8, 'an unspecified ("this network")'],
  [ip4(10, 0, 0, 0), 8, 'a private'],
  [ip4(100, 64, 0, 0), 10, 'a carrier-grade NAT (shared)'],
  [ip4(127, 0, 0, 0), 8, 'a loopback'],
  [ip4(169, 254, 0, 0), 16, 'a link-local'],
  [ip4(172, 16, 0, 0), 12, 'a private'],
  [ip4(192, 0, 0, 0), 24, 'an IETF protocol'],
  [ip4(192, 0, 2, 0), 24, 'a documentation'],
  [ip4(192, 88, 99, 0), 24, 'a 6to4 relay'],
  [ip4(192, 168, 0, 0), 16, 'a private'],
  [ip4(198, 18, 0, 0), 15, 'a benchmarking'],
  [ip4(198, 51, 100, 0), 24, 'a documentation'],
  [ip4(203, 0, 113, 0), 24, 'a documentation'],
  [ip4(224, 0, 0, 0), 4, 'a multicast'],
  [ip4(240, 0, 0, 0), 4, 'a reserved (or broadcast)'],
];

function ip4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** What kind of non-public IPv4 address this is, or null for a public one. */
export function ipv4Problem(addr: number): string | null {
  for (const [base, bits, what] of IPV4_REFUSED) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if ((addr & mask) >>> 0 === base) return what;
  }
  return null;
}

/** An IPv6 address (no brackets, no zone) as eight 16-bit groups, or null. Accepts a trailing dotted IPv4. */
export function parseIpv6(text: string): number[] | null {
  let s = text.toLowerCase();
  const tail: number[] = [];
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (dotted) {
    const v4 = parseDottedIpv4(dotted[2]!);
    if (v4 === null) return null;
    tail.push(v4 >>> 16, v4 & 0xffff);
    s = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return null;
  const zeros = new Array<number>(8 - known).fill(0);
  return [...head.map((g) => parseInt(g, 16)), ...(halves.length === 2 ? zeros : []), ...rest.map((g) => parseInt(g, 16)), ...tail];
}

/** What kind of non-public IPv6 address this is (eight groups), or null for a public one. */
export function ipv6Problem(g: readonly number[]): string | null {
  const v4At = (i: number) => ((g[i]! << 16) | g[i + 1]!) >>> 0;
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(7) && g[7] === 0) return 'an unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'a loopback';
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d): the IPv4 inside decides.
  if (zeroUpTo(5) && g[5] === 0xffff) return embedded(v4At(6), 'an IPv4-mapped');
  if (zeroUpTo(6)) return 'a deprecated IPv4-compatible';
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return embedded(v4At(6), 'a NAT64');
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'a local NAT64';
  // 6to4 (2002:a.b.c.d::/48): the IPv4 in groups 1-2.
  if (g[0] === 0x2002) return embedded(v4At(1), 'a 6to4');
  if (g[0] === 0x2001 && g[1] === 0) return 'a Teredo';
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'a documentation';
  if (g[0] === 0x100 && g.slice(1, 4).every((x) => x === 0)) return 'a discard-only';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'a unique local (private)';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'a link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'a site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'a multicast';
  return null;
}

function embedded(v4: number, form: string): string | null {
  const why = ipv4Problem(v4);
  return why ? `${form} ${why.replace(/^an? /, '')}` : null;
}
