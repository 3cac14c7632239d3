// The token a voice member presents to the media node's SFU when a party's voice group is too big
// for a peer-to-peer mesh: the Room signs it (HS256 with VOICE_SFU_SECRET, which the Worker and
// the media nodes share) for one seat — room, connection, member — for a few minutes; the SFU
// checks it before it allocates anything. Pure Web Crypto: the Worker and the media node import it.
import { z } from 'zod';
import { signJwsHs256, verifyJwsHs256 } from './room-token.ts';

export const VOICE_SFU_AUDIENCE = 'edgelive-voice-sfu';
/** Long enough to connect; the SFU session outlives the token (it is checked at connect time). */
export const VOICE_SFU_TOKEN_TTL_SEC = 300;

export interface VoiceSfuClaims {
  aud: typeof VOICE_SFU_AUDIENCE;
  room: string;
  conn: string;
  uid: string;
  name: string;
  /** Seconds since the epoch. */
  exp: number;
}

const Claims = z.object({
  aud: z.literal(VOICE_SFU_AUDIENCE),
  room: z.string().min(1).max(64),
  conn: z.string().min(1).max(24),
  uid: z.string().min(1).max(80),
  name: z.string().min(1).max(64),
  exp: z.number().int().positive(),
});

export function signVoiceSfuToken(claims: Omit<VoiceSfuClaims, 'aud'>, secret: string): Promise<string> {
  return signJwsHs256({ aud: VOICE_SFU_AUDIENCE, ...claims }, secret);
}

export async function verifyVoiceSfuToken(
  token: string,
  secret: string,
  nowSec: number,
): Promise<{ ok: true; claims: VoiceSfuClaims } | { ok: false; reason: string }> {
  const jws = await verifyJwsHs256(token, secret);
  if (!jws.ok) return jws;
  const c = Claims.safeParse(jws.payload);
  if (!c.success) return { ok: false, reason: 'bad claims' };
  if (c.data.exp <= nowSec) return { ok: false, reason: 'token expired' };
  return { ok: true, claims: c.data };
}

// ---------------------------------------------------------------------------------------------
// The Room → SFU moderation message: which seats of the room its moderators muted, signed with the
// same secret under another audience (a member's token can never pass for it, nor it for one).
// `seq` (the Room's clock, ms) orders them: the node ignores one older than what it applied.

export const VOICE_SFU_MODERATION_AUDIENCE = 'edgelive-voice-sfu-moderation';
export const VOICE_SFU_MODERATION_TTL_SEC = 60;

export interface VoiceSfuModeration {
  aud: typeof VOICE_SFU_MODERATION_AUDIENCE;
  room: string;
  /** The seats (`conn`) muted by a moderator now; every other seat is not. */
  forced: string[];
  seq: number;
  exp: number;
}

const Moderation = z.object({
  aud: z.literal(VOICE_SFU_MODERATION_AUDIENCE),
  room: z.string().min(1).max(64),
  forced: z.array(z.string().min(1).max(24)).max(64),
  seq: z.number().int().nonnegative(),
  exp: z.number().int().positive(),
});

export function signVoiceSfuModeration(m: Omit<VoiceSfuModeration, 'aud'>, secret: string): Promise<string> {
  return signJwsHs256({ aud: VOICE_SFU_MODERATION_AUDIENCE, ...m }, secret);
}

export async function verifyVoiceSfuModeration(
  token: string,
  secret: string,
  nowSec: number,
): Promise<{ ok: true; claims: VoiceSfuModeration } | { ok: false; reason: string }> {
  const jws = await verifyJwsHs256(token, secret);
  if (!jws.ok) return jws;
  const c = Moderation.safeParse(jws.payload);
  if (!c.success) return { ok: false, reason: 'bad claims' };
  if (c.data.exp <= nowSec) return { ok: false, reason: 'token expired' };
  return { ok: true, claims: c.data };
}
