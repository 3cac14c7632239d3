// The D1 catalog of streams: rows, key hashing and id generation. Stream keys are stored as
// SHA-256 hashes (they are long random secrets, so a fast hash is enough); the key is shown once.
import { StreamSettingsSchema, type StreamSettings } from '../core/contracts/stream-config.ts';

export interface StreamRow {
  id: string;
  title: string;
  key_hash: string;
  settings: string;
  status: 'idle' | 'live' | 'ended';
  created_at: number;
  updated_at: number;
}

export interface StreamRecord {
  id: string;
  title: string;
  settings: StreamSettings;
  status: StreamRow['status'];
  createdAt: number;
  updatedAt: number;
}

export function toRecord(row: StreamRow): StreamRecord {
  return {
    id: row.id,
    title: row.title,
    settings: StreamSettingsSchema.parse(JSON.parse(row.settings)),
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomString(length: number, alphabet = ALPHABET): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = '';
  // 256 % 36 leaves a tiny bias; ids and keys are long enough that it does not matter.
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function newStreamId(): string {
  return `st${randomString(14)}`;
}

export function newStreamKey(): string {
  return `sk_${randomString(40, ALPHABET + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')}`;
}

export async function hashStreamKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function getStream(db: D1Database, id: string): Promise<StreamRecord | null> {
  const row = await db.prepare('SELECT * FROM streams WHERE id = ?').bind(id).first<StreamRow>();
  return row ? toRecord(row) : null;
}

export async function findStreamByKey(db: D1Database, key: string): Promise<StreamRecord | null> {
  const row = await db
    .prepare('SELECT * FROM streams WHERE key_hash = ?')
    .bind(await hashStreamKey(key))
    .first<StreamRow>();
  return row ? toRecord(row) : null;
}
