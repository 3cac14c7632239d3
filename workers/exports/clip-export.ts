// The clip export job, the consumer of the export queue: makes each file of a clip's MP4 export
// once and stores it in R2 (exports/{clip}/{rendition}.mp4), where the download route serves it
// like any immutable object (Range, ETag, colo cache). A file is the clip's segments of a video
// rendition and of the audio, read from R2 one at a time, remuxed by the pure ClipMp4Muxer
// (core/cmaf/clip-mp4.ts) and written out in multipart-upload parts as they fill, so
// memory stays at a few parts whatever the clip's length. Queues deliver at least once: a file
// already in R2 is not made again, and the export's status only moves forward.
import type { Env } from '../env.ts';
import { getStream } from '../catalog.ts';
import { BoxError } from '../../core/cmaf/boxes.ts';
import { ClipEncodingChanged, muxClip, type ClipSegmentSource } from '../../core/cmaf/clip-mp4.ts';
import {
  exportContentDisposition,
  exportRetryDelaySeconds,
  exportTracks,
  MAX_EXPORT_ATTEMPTS,
  type ClipExportMessage,
} from '../../core/contracts/clip-export.ts';
import type { VodPlaylistSnapshot, VodSegment } from '../../core/contracts/live-model.ts';
import { clipExportKey, mediaObjectKey } from '../../core/contracts/object-keys.ts';
import type { LadderRung } from '../../core/contracts/stream-config.ts';
import { queueWebhookEvent } from '../routes/webhooks.ts';
import { readSegment, type SegmentRef } from '../segment-parts.ts';
import type { ClipRow } from '../vod-catalog.ts';
import { clipDownloadPath } from '../../core/contracts/vod-assets.ts';

/**
 * Multipart part size. R2 wants every part but the last at least 5 MiB and all of one size; the
 * job holds the first part until the end (the mdat's size goes into it) plus the one filling.
 */
export const EXPORT_PART_SIZE = 8 * 1024 * 1024;

/** A failure that retrying cannot fix (the media are gone, or cannot go into one file). */
export class ExportFailure extends Error {
  override name = 'ExportFailure';
}

export interface ExportOptions {
  /** Multipart part size (tests use a small one to exercise several parts). */
  partSize?: number;
  /** Least time between two writes of the export's progress to D1 (default 1 s). */
  progressIntervalMs?: number;
}

/** Least time between two progress writes: the CLI polls about once a second. */
const PROGRESS_INTERVAL_MS = 1000;

export async function handleExportBatch(batch: MessageBatch<ClipExportMessage>, env: Env, options: ExportOptions = {}): Promise<void> {
  // max_batch_size is 1 (wrangler.toml): one job per invocation, so one clip's R2 reads never
  // share an invocation's subrequest budget with another's.
  for (const msg of batch.messages) {
    try {
      await exportClip(env, msg.body.clipId, options);
      msg.ack();
    } catch (err) {
      const permanent = err instanceof ExportFailure || err instanceof BoxError;
      console.error(
        JSON.stringify({
          level: 'error',
          msg: 'clip export failed',
          clipId: msg.body.clipId,
          attempt: msg.attempts,
          permanent,
          error: String(err),
        }),
      );
      if (permanent || msg.attempts >= MAX_EXPORT_ATTEMPTS) {
        await failExport(
          env,
          msg.body.clipId,
          permanent ? (err as Error).message : 'the export could not be made (storage errors); request it again',
        );
        msg.ack();
      } else {
        msg.retry({ delaySeconds: exportRetryDelaySeconds(msg.attempts) });
      }
    }
  }
}

/** Makes every file the clip's export lists that is not in R2 yet, then marks the export ready. */
export async function exportClip(env: Env, clipId: string, options: ExportOptions = {}): Promise<void> {
  const row = await env.DB.prepare('SELECT * FROM clips WHERE id = ?').bind(clipId).first<ClipRow>();
  // A duplicate message, or a clip gone since: nothing to do.
  if (!row || row.export_renditions === null || (row.export_status !== 'pending' && row.export_status !== 'processing')) return;
  if (row.status !== 'ready') throw new ExportFailure('the clip has expired');
  const requested = JSON.parse(row.export_renditions) as string[];
  await env.DB.prepare("UPDATE clips SET export_status = 'processing', updated_at = ? WHERE id = ? AND export_status = 'pending'")
    .bind(Date.now(), clipId)
    .run();
  const stream = await getStream(env.DB, row.stream_id);
  if (!stream) throw new ExportFailure("the clip's stream was deleted");
  const files: Array<{ rendition: string; size: number }> = [];
  const progress = new ExportProgress(env.DB, clipId, requested.length, options.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
  for (const rendition of requested) {
    const key = clipExportKey(clipId, rendition);
    const done = await env.MEDIA.head(key);
    files.push({
      rendition,
      size: done?.size ?? (await writeClipFile(env, row, stream.settings.ladder, rendition, key, options, progress)),
    });
    await progress.fileDone();
  }
  // Ready only if the request did not change meanwhile (a new one re-queued the job).
  const updated = await env.DB.prepare(
    "UPDATE clips SET export_status = 'ready', export_error = NULL, export_progress = 1, updated_at = ? WHERE id = ? AND export_renditions = ? AND export_status IN ('pending', 'processing')",
  )
    .bind(Date.now(), clipId, row.export_renditions)
    .run();
  if (updated.meta.changes > 0) {
    await queueWebhookEvent(env, 'clip.export.ready', {
      clipId,
      streamId: row.stream_id,
      files: files.map((f) => ({ rendition: f.rendition, size: f.size, downloadPath: clipDownloadPath(clipId, f.rendition) })),
    });
  }
}

async function failExport(env: Env, clipId: string, error: string): Promise<void> {
  const row = await env.DB.prepare('SELECT stream_id FROM clips WHERE id = ?').bind(clipId).first<{ stream_id: string }>();
  if (!row) return;
  const updated = await env.DB.prepare(
    "UPDATE clips SET export_status = 'failed', export_error = ?, updated_at = ? WHERE id = ? AND export_status IN ('pending', 'processing')",
  )
    .bind(error.slice(0, 500), Date.now(), clipId)
    .run();
  if (updated.meta.changes > 0) await queueWebhookEvent(env, 'clip.export.failed', { clipId, streamId: row.stream_id, error });
}

interface TrackPlan {
  rendition: string;
  segments: VodSegment[];
  /** Seconds from the first to the end of the last segment with media, gaps between included. */
  spanDuration: number;
  startTimeOffset: number;
}

/** One file: the rendition (and the audio), segment by segment from R2 into a multipart upload. */
async function writeClipFile(
  env: Env,
  clip: ClipRow,
  ladder: readonly LadderRung[],
  rendition: string,
  key: string,
  options: ExportOptions,
  progress: ExportProgress,
): Promise<number> {
  const stub = env.STREAM_STATE.getByName(clip.stream_id);
  const plans: TrackPlan[] = [];
  for (const name of exportTracks(ladder, rendition)) {
    const r = await stub.vodPlaylist(clip.id, name);
    if (r.status !== 200) {
      // The audio is optional (a clip may have none); the rendition asked for is not.
      if (name !== rendition) continue;
      if (r.status === 404 || r.status === 410) throw new ExportFailure(`no media of ${name} in the clip (${r.message})`);
      throw new Error(`vodPlaylist ${name}: ${r.status} ${r.code}`);
    }
    const snapshot: VodPlaylistSnapshot = r.snapshot;
    // EXT-X-GAP segments have no media: the previous sample is held across those inside the
    // clip; those at its ends are left out, and the start offset (measured from the first listed
    // segment) no longer counts the leading ones.
    const isGap = (x: VodSegment) => (x as { gap?: boolean }).gap === true;
    const all = snapshot.segments;
    let first = 0;
    let lead = 0;
    while (first < all.length && isGap(all[first]!)) lead += all[first++]!.duration;
    let end = all.length;
    while (end > first && isGap(all[end - 1]!)) end--;
    const span = all.slice(first, end);
    const segments = span.filter((x) => !isGap(x));
    if (segments.length === 0) {
      if (name !== rendition) continue;
      throw new ExportFailure(`no media of ${name} in the clip`);
    }
    const spanDuration = span.reduce((n, x) => n + x.duration, 0);
    plans.push({ rendition: name, segments, spanDuration, startTimeOffset: Math.max(0, (snapshot.startTimeOffset ?? 0) - lead) });
  }
  const primary = plans[0]!;
  // What the clip's playlist plays: its segments (the last one cut), from the start part on.
  const duration = Math.round((primary.spanDuration - primary.startTimeOffset) * 1e6) / 1e6;
  if (!(duration > 0)) throw new ExportFailure('the clip has no duration');

  const initKey = (p: TrackPlan, epoch: number) => mediaObjectKey(clip.stream_id, epoch, p.rendition, { kind: 'init' });
  const inits = await Promise.all(plans.map((p) => readObject(env, initKey(p, p.segments[0]!.epoch))));
  const audioOnly = ladder.find((r) => r.name === rendition)?.kind === 'audio';
  // The download's headers live with the object (and so with its colo cache entries).
  const sink = new R2FileSink(env.MEDIA, key, options.partSize ?? EXPORT_PART_SIZE, {
    contentType: audioOnly ? 'audio/mp4' : 'video/mp4',
    contentDisposition: exportContentDisposition(clip.title, clip.id, rendition, audioOnly),
    cacheControl: 'public, max-age=31536000, immutable',
  });
  const fetchSegment = async (t: number, i: number): Promise<ClipSegmentSource> => {
    const plan = plans[t]!;
    const seg = plan.segments[i]!;
    const previous = plan.segments[i - 1];
    return {
      bytes: await readJoinedSegment(
        env,
        { streamId: clip.stream_id, epoch: seg.epoch, rendition: plan.rendition, msn: seg.msn },
        seg.byteLength,
      ),
      // A reconnection inside the clip: its fragments continue the track only if the new
      // encoder describes its samples the same way (same ladder settings: it does).
      init: previous && previous.epoch !== seg.epoch ? await readObject(env, initKey(plan, seg.epoch)) : undefined,
    };
  };
  // One segment read ahead per track, so R2's latency overlaps the remuxing and the writes.
  const ahead = new Map<string, Promise<ClipSegmentSource>>();
  const segmentsInFile = plans.reduce((n, p) => n + p.segments.length, 0);
  let segmentsRead = 0;
  const readSegment = async (t: number, i: number): Promise<ClipSegmentSource> => {
    await progress.within(segmentsRead++ / segmentsInFile);
    const read = ahead.get(`${t}:${i}`) ?? fetchSegment(t, i);
    ahead.delete(`${t}:${i}`);
    if (i + 1 < plans[t]!.segments.length) {
      const next = fetchSegment(t, i + 1);
      next.catch(() => {}); // seen when awaited; never an unhandled rejection if the job stops first
      ahead.set(`${t}:${i + 1}`, next);
    }
    return read;
  };
  const started = Date.now();
  try {
    const muxer = await muxClip({
      inits,
      segmentCounts: plans.map((p) => p.segments.length),
      readSegment,
      write: (bytes) => sink.write(bytes),
      timing: { startOffset: primary.startTimeOffset, duration },
    });
    const size = await sink.close((head) => muxer.patchHead(head));
    console.log(
      JSON.stringify({
        level: 'info',
        msg: 'clip exported',
        clipId: clip.id,
        rendition,
        tracks: plans.map((p) => p.rendition),
        size,
        duration,
        ms: Date.now() - started,
      }),
    );
    return size;
  } catch (err) {
    await sink.abort();
    if (err instanceof ClipEncodingChanged) {
      throw new ExportFailure(
        `the ${plans[err.track]!.rendition} encoding changed at a reconnection inside the clip; export the parts before and after it separately`,
      );
    }
    throw err;
  }
}

/**
 * The export's progress in D1: files done plus the fraction of the file being made, over the
 * files asked for. Written at most once per interval (a D1 write per segment would cost more
 * than the remux), and only while the export is still being made.
 */
class ExportProgress {
  readonly #db: D1Database;
  readonly #clipId: string;
  readonly #files: number;
  readonly #intervalMs: number;
  #filesDone = 0;
  #writtenAt = 0;

  constructor(db: D1Database, clipId: string, files: number, intervalMs: number) {
    this.#db = db;
    this.#clipId = clipId;
    this.#files = files;
    this.#intervalMs = intervalMs;
  }

  /** The file being made is `fraction` done. */
  async within(fraction: number): Promise<void> {
    const now = Date.now();
    if (now - this.#writtenAt < this.#intervalMs) return;
    this.#writtenAt = now;
    await this.#write((this.#filesDone + fraction) / this.#files);
  }

  async fileDone(): Promise<void> {
    this.#filesDone++;
    if (this.#filesDone < this.#files) await this.#write(this.#filesDone / this.#files);
  }

  async #write(value: number): Promise<void> {
    await this.#db
      .prepare("UPDATE clips SET export_progress = ? WHERE id = ? AND export_status = 'processing'")
      .bind(Math.round(value * 1000) / 1000, this.#clipId)
      .run();
  }
}

/** An object's bytes (the first `length` of them when given), or a permanent failure when it is gone. */
async function readObject(env: Env, key: string, length?: number): Promise<Uint8Array> {
  const obj = await env.MEDIA.get(key, length === undefined ? undefined : { range: { offset: 0, length } });
  if (!obj) throw new ExportFailure(`the clip's media are gone (${key})`);
  return new Uint8Array(await obj.arrayBuffer());
}

/** A segment's bytes joined from its parts (the first `length` of them when given), or a permanent failure when they are gone. */
async function readJoinedSegment(env: Env, ref: SegmentRef, length?: number): Promise<Uint8Array> {
  const seg = await readSegment(env.MEDIA, ref, () =>
    env.STREAM_STATE.getByName(ref.streamId).segmentParts(ref.rendition, ref.epoch, ref.msn),
  );
  if (!('bytes' in seg)) throw new ExportFailure(`the clip's media are gone (segment ${ref.msn} of ${ref.rendition}: ${seg.message})`);
  return length === undefined ? seg.bytes : seg.bytes.subarray(0, length);
}

/**
 * Writes one R2 object from a stream of byte chunks of unknown total length: small files in one
 * put, larger ones as a multipart upload of equal parts. The first part is kept until `close`,
 * which may patch it (the mdat size), and is uploaded last (parts may arrive in any order).
 */
export class R2FileSink {
  readonly #bucket: R2Bucket;
  readonly #key: string;
  readonly #partSize: number;
  readonly #httpMetadata: R2HTTPMetadata;
  #first: Uint8Array | null = null;
  #buffer: Uint8Array;
  #filled = 0;
  #upload: R2MultipartUpload | null = null;
  readonly #parts: R2UploadedPart[] = [];
  #size = 0;

  constructor(bucket: R2Bucket, key: string, partSize: number, httpMetadata: R2HTTPMetadata) {
    this.#bucket = bucket;
    this.#key = key;
    this.#partSize = partSize;
    this.#httpMetadata = httpMetadata;
    this.#buffer = new Uint8Array(partSize);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.byteLength) {
      const n = Math.min(bytes.byteLength - at, this.#partSize - this.#filled);
      this.#buffer.set(bytes.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === this.#partSize) await this.#flush();
    }
    this.#size += bytes.byteLength;
  }

  /** Patches the first bytes, stores the object; returns its size. */
  async close(patchHead: (head: Uint8Array) => void): Promise<number> {
    if (!this.#first) {
      const whole = this.#buffer.subarray(0, this.#filled);
      patchHead(whole);
      await this.#bucket.put(this.#key, whole, { httpMetadata: this.#httpMetadata });
      return this.#size;
    }
    patchHead(this.#first);
    const upload =
      this.#upload ?? (this.#upload = await this.#bucket.createMultipartUpload(this.#key, { httpMetadata: this.#httpMetadata }));
    if (this.#filled > 0) this.#parts.push(await upload.uploadPart(this.#parts.length + 2, this.#buffer.subarray(0, this.#filled)));
    this.#parts.push(await upload.uploadPart(1, this.#first));
    await upload.complete(this.#parts.sort((a, b) => a.partNumber - b.partNumber));
    return this.#size;
  }

  async abort(): Promise<void> {
    // An unfinished upload would otherwise linger (R2 aborts it after 7 days).
    await this.#upload?.abort().catch(() => {});
  }

  async #flush(): Promise<void> {
    if (!this.#first) {
      this.#first = this.#buffer;
    } else {
      this.#upload ??= await this.#bucket.createMultipartUpload(this.#key, { httpMetadata: this.#httpMetadata });
      this.#parts.push(await this.#upload.uploadPart(this.#parts.length + 2, this.#buffer));
    }
    this.#buffer = new Uint8Array(this.#partSize);
    this.#filled = 0;
  }
}
