// The R2 side of a stream's object: pushed objects written once under their immutable keys (a
// retry of a push joins the write in flight), thumbnails. A segment is never written: its bytes
// are its parts' (PART-07), and the edge serves it as their concatenation (workers/segment-parts.ts).
import { FINAL_PART_METADATA, mediaContentType, mediaObjectKey, thumbnailKey } from '../core/contracts/object-keys.ts';
import type { IngestPush } from '../core/contracts/stream-rpc.ts';
import { InFlightWrites } from '../core/live/waiters.ts';

export class StreamMedia {
  private readonly bucket: R2Bucket;
  private readonly streamId: () => string;
  private readonly writes = new InFlightWrites();

  constructor(bucket: R2Bucket, streamId: () => string) {
    this.bucket = bucket;
    this.streamId = streamId;
  }

  /**
   * Stores a pushed object, or joins the write of a push of the same object still in flight. A
   * segment push carries no bytes (its parts hold them) and writes nothing; one that still
   * carries them (a media node before the one-write change, or `BENCH_SEGMENT_COPY`) is stored
   * as before, so the previous design can be measured beside this one.
   */
  storePush(push: IngestPush, body: ArrayBuffer): { key: string; write: Promise<void> } {
    const key = mediaObjectKey(this.streamId(), push.epoch, push.rendition, push);
    if (push.kind === 'segment' && body.byteLength === 0) return { key, write: Promise.resolve() };
    const contentType = mediaContentType(push, push.kind === 'init' ? push.meta.kind : undefined);
    // The last part of a segment says so on its object: the edge joins a segment's parts up to
    // this one without asking the object how many there are.
    const customMetadata = push.kind === 'part' && push.meta.final ? FINAL_PART_METADATA : undefined;
    return { key, write: this.writes.join(key, () => this.bucket.put(key, body, { httpMetadata: { contentType }, customMetadata })) };
  }

  /** The caller of `storePush` is done with the write. */
  release(key: string, write: Promise<void>): void {
    this.writes.release(key, write);
  }

  async putThumbnail(epoch: number, seq: number, body: ArrayBuffer): Promise<void> {
    await this.bucket.put(thumbnailKey(this.streamId(), epoch, seq), body, { httpMetadata: { contentType: 'image/jpeg' } });
  }
}
