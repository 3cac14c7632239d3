// A segment is served as its parts joined (core/live/segment-join.ts): the bytes, the entity
// tag, and the single byte range a Range header asks of the whole (RFC 9110 §14).
import { describe, expect, it } from 'vitest';
import { byteRange, joinParts, joinedEtag } from '../../core/live/segment-join.ts';

describe('joining a segment from its parts', () => {
  it('the segment is its parts concatenated, in order', () => {
    const bytes = joinParts([new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3])]);
    expect([...bytes]).toEqual([1, 2, 3]);
  });

  it('the entity tag is strong, the same for the same parts, and changes with any part or their order', () => {
    const tag = joinedEtag(['"a"', '"b"']);
    expect(tag).toMatch(/^"j2-[0-9a-f]{16}"$/);
    expect(joinedEtag(['"a"', '"b"'])).toBe(tag);
    expect(joinedEtag(['"b"', '"a"'])).not.toBe(tag);
    expect(joinedEtag(['"a"', '"c"'])).not.toBe(tag);
    expect(joinedEtag(['"a"'])).not.toBe(tag);
  });

  it('answers one byte range of the joined segment: first-last, open-ended, suffix, clamped', () => {
    expect(byteRange('bytes=0-31', 320)).toEqual({ offset: 0, length: 32 });
    expect(byteRange('bytes=100-', 320)).toEqual({ offset: 100, length: 220 });
    expect(byteRange('bytes=-20', 320)).toEqual({ offset: 300, length: 20 });
    expect(byteRange('bytes=-1000', 320)).toEqual({ offset: 0, length: 320 });
    expect(byteRange('bytes=300-9999', 320)).toEqual({ offset: 300, length: 20 });
  });

  it('a range past the end is unsatisfiable (416); none, several or malformed ones get the whole segment', () => {
    expect(byteRange('bytes=320-', 320)).toBe('unsatisfiable');
    expect(byteRange('bytes=-0', 320)).toBe('unsatisfiable');
    expect(byteRange(undefined, 320)).toBeNull();
    expect(byteRange('bytes=0-1,5-9', 320)).toBeNull();
    expect(byteRange('items=0-1', 320)).toBeNull();
    expect(byteRange('bytes=9-2', 320)).toBeNull();
  });
});
