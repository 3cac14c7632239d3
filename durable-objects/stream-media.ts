// The R2 side of a stream's object: pushed objects written once under their immutable keys (a
// retry of a push joins the write in flight), thumbnails, and the segments the object assembles
// from their announced parts when an epoch ends abruptly (core/live/end-assembly.ts).
import { mediaContentType, mediaObjectKey, thumbnailKey } from '../core/contracts/object-keys.ts';
import type { IngestPush } from '../core/contracts/stream-rpc.ts';
import { joinParts } from '../core/live/end-assembly.ts';
import type { RenditionState, SegmentRecord } from '../core/live/stream-model.ts';
import { InFlightWrites } from '../core/live/waiters.ts';

export class StreamMedia {
  private readonly bucket: R2Bucket;
  private readonly streamId: () => string;
  private readonly writes = new InFlightWrites();

  constructor(bucket: R2Bucket, streamId: () => string) {
    this.bucket = bucket;
    this.streamId = streamId;
  }

  /** Stores a pushed object, or joins the write of a push of the same object still in flight. */
  storePush(push: IngestPush, body: ArrayBuffer): { key: string; write: Promise<void> } {
    const key = mediaObjectKey(this.streamId(), push.epoch, push.rendition, push);
    const contentType = mediaContentType(push, push.kind === 'init' ? push.meta.kind : undefined);
    return { key, write: this.writes.join(key, () => this.bucket.put(key, body, { httpMetadata: { contentType } })) };
  }

  /** The caller of `storePush` is done with the write. */
  release(key: string, write: Promise<void>): void {
    this.writes.release(key, write);
  }

  async putThumbnail(epoch: number, seq: number, body: ArrayBuffer): Promise<void> {
    await this.bucket.put(thumbnailKey(this.streamId(), epoch, seq), body, { httpMetadata: { contentType: 'image/jpeg' } });
  }

  /**
   * Writes an open segment as the concatenation of its announced parts, as many as R2 has in
   * order. Returns how many parts it holds and their seconds, or null when there were none or
   * the segment's own push closed it meanwhile (then that push's bytes stay).
   */
  async assembleSegment(rs: RenditionState, segment: SegmentRecord, parts: ReadonlyArray<{ idx: number; duration: number }>): Promise<{ partCount: number; seconds: number } | null> {
    const bodies: ArrayBuffer[] = [];
    let seconds = 0;
    for (const p of parts) {
      const obj = await this.bucket.get(mediaObjectKey(this.streamId(), segment.epoch, rs.name, { kind: 'part', msn: segment.msn, part: p.idx }));
      if (!obj) break;
      bodies.push(await obj.arrayBuffer());
      seconds += p.duration;
    }
    if (bodies.length === 0) return null;
    // The segment's own push may be storing it right now (pipelined pushes): its write lands
    // first, and if that push closed the segment its bytes stay. A push of it arriving during
    // our write joins our write instead of overwriting it (storePush).
    const key = mediaObjectKey(this.streamId(), segment.epoch, rs.name, { kind: 'segment', msn: segment.msn });
    await this.writes.settled(key);
    if (segment.duration !== null) return null;
    const contentType = mediaContentType({ kind: 'segment', msn: segment.msn }, rs.info?.kind);
    const write = this.writes.start(key, () => this.bucket.put(key, joinParts(bodies), { httpMetadata: { contentType } }));
    try {
      await write;
    } finally {
      this.writes.release(key, write);
    }
    return { partCount: bodies.length, seconds };
  }
}
