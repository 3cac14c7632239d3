// The D1 rows of recordings and clips: what the admin API lists and what the /vod edge checks
// before serving an asset. The StreamState DO writes recordings (it knows when a broadcast starts
// and ends) and expiries; the clips route writes clips. Ids and paths: core/contracts/vod-assets.ts.
import { CLIP_ID_RE, RECORDING_ID_RE, clipDownloadPath, vodPlaybackPath } from '../core/contracts/vod-assets.ts';

export type RecordingStatus = 'recording' | 'ready' | 'expired';
export type ExportStatus = 'pending' | 'processing' | 'ready' | 'failed';

export interface RecordingRow {
  id: string;
  stream_id: string;
  status: RecordingStatus;
  started_at: number;
  ended_at: number | null;
  duration: number | null;
  first_msn: number;
  last_msn: number | null;
  discontinuities: number;
  expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ClipRow {
  id: string;
  stream_id: string;
  status: 'ready' | 'expired';
  title: string;
  start_at: number;
  end_at: number;
  duration: number;
  first_msn: number;
  last_msn: number;
  export_status: ExportStatus | null;
  /** R2 prefix of the export's files (`exports/{clip}/`). */
  export_key: string | null;
  export_error: string | null;
  /** JSON array of the exported renditions, the default download first (migration 0004). */
  export_renditions: string | null;
  /** 0 to 1 across the export's files while it is made (migration 0005); null before that. */
  export_progress?: number | null;
  expires_at: number;
  created_at: number;
  updated_at: number;
}

/** A VOD asset the /vod routes serve: a recording or a clip, by id. */
export type VodAsset =
  | { kind: 'recording'; id: string; streamId: string; status: RecordingStatus; firstMsn: number; lastMsn: number | null }
  | { kind: 'clip'; id: string; streamId: string; status: 'ready' | 'expired'; firstMsn: number; lastMsn: number };

export async function findVodAsset(db: D1Database, id: string): Promise<VodAsset | null> {
  if (RECORDING_ID_RE.test(id)) {
    const r = await db.prepare('SELECT * FROM recordings WHERE id = ?').bind(id).first<RecordingRow>();
    return r ? { kind: 'recording', id, streamId: r.stream_id, status: r.status, firstMsn: r.first_msn, lastMsn: r.last_msn } : null;
  }
  if (CLIP_ID_RE.test(id)) {
    const c = await db.prepare('SELECT * FROM clips WHERE id = ?').bind(id).first<ClipRow>();
    return c ? { kind: 'clip', id, streamId: c.stream_id, status: c.status, firstMsn: c.first_msn, lastMsn: c.last_msn } : null;
  }
  return null;
}

export function recordingJson(origin: string, r: RecordingRow) {
  return {
    id: r.id,
    streamId: r.stream_id,
    status: r.status,
    startedAt: new Date(r.started_at).toISOString(),
    endedAt: r.ended_at === null ? null : new Date(r.ended_at).toISOString(),
    duration: r.duration,
    discontinuities: r.discontinuities,
    expiresAt: r.expires_at === null ? null : new Date(r.expires_at).toISOString(),
    playback: r.status === 'ready' ? { hls: origin + vodPlaybackPath(r.id) } : null,
  };
}

export function clipJson(origin: string, c: ClipRow) {
  return {
    id: c.id,
    streamId: c.stream_id,
    status: c.status,
    title: c.title,
    start: new Date(c.start_at).toISOString(),
    end: new Date(c.end_at).toISOString(),
    duration: c.duration,
    expiresAt: new Date(c.expires_at).toISOString(),
    playback: c.status === 'ready' ? { hls: origin + vodPlaybackPath(c.id) } : null,
    export: clipExportJson(origin, c),
  };
}

function clipExportJson(origin: string, c: ClipRow) {
  if (c.export_status === null) return null;
  const ready = c.export_status === 'ready' && c.status === 'ready';
  const renditions = c.export_renditions ? (JSON.parse(c.export_renditions) as string[]) : [];
  return {
    status: c.export_status,
    /** Fraction done (0 to 1): 1 once ready, 0 while it waits for its job. */
    progress: ready ? 1 : c.export_status === 'pending' ? 0 : Math.min(1, Math.max(0, c.export_progress ?? 0)),
    url: ready ? origin + clipDownloadPath(c.id) : null,
    error: c.export_error,
    renditions: renditions.map((rendition) => ({ rendition, url: ready ? origin + clipDownloadPath(c.id, rendition) : null })),
  };
}
