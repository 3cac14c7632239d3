// A segment is served as the concatenation of its parts (PART-07): each media byte is written to
// R2 once, as a part, and never again as a segment. The pure side of joining: the bytes, the
// segment's entity tag from its parts', and the byte range a Range header asks of the whole.

/** The parts' bytes, in order, as one segment. */
export function joinParts(bodies: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = bodies.reduce((n, b) => n + b.byteLength, 0);
  const joined = new Uint8Array(total);
  let off = 0;
  for (const b of bodies) {
    joined.set(b, off);
    off += b.byteLength;
  }
  return joined;
}

/**
 * A strong entity tag for the joined segment: a 64-bit FNV-1a hash of its parts' tags in order
 * (immutable parts, so the same segment always gets the same tag, on every colo).
 */
export function joinedEtag(partEtags: readonly string[]): string {
  let h = 0xcbf29ce484222325n;
  const text = partEtags.join('|');
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return `"j${partEtags.length}-${h.toString(16).padStart(16, '0')}"`;
}

/**
 * The single byte range a `Range` header asks of an object of `size` bytes (RFC 9110 §14.1.2):
 * null when there is none or it is not one we answer partially (several ranges, another unit:
 * the whole object is answered, which the RFC allows), 'unsatisfiable' for a 416.
 */
export function byteRange(header: string | undefined, size: number): { offset: number; length: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const first = Number(m[1]);
  if (first >= size) return 'unsatisfiable';
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (last < first) return null;
  return { offset: first, length: last - first + 1 };
}
