// Playback signing keys (admin API, mounted at /api/signing-keys behind the admin bearer token):
// create a key pair (the private key is shown once), list, revoke.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Env } from '../env.ts';
import { HttpError, parseOr400, readJson } from '../http.ts';
import { KID_RE } from '../../core/auth/playback-token.ts';
import { createSigningKey, getSigningKey, listSigningKeys, revokeSigningKey, signingKeyJson } from '../signing-keys.ts';

export const keyRoutes = new Hono<{ Bindings: Env }>();

const CreateKeySchema = z.strictObject({
  name: z.string().max(100).default(''),
});

keyRoutes.post('/', async (c) => {
  const body = parseOr400(CreateKeySchema, await readJson(c.req.raw), 'signing key');
  const { pair, row } = await createSigningKey(c.env.DB, body.name);
  return c.json({ ...signingKeyJson(row), privateJwk: pair.privateJwk, privateKeyPem: pair.privateKeyPem }, 201);
});

keyRoutes.get('/', async (c) => {
  const rows = await listSigningKeys(c.env.DB);
  return c.json({ keys: rows.map(signingKeyJson) });
});

keyRoutes.get('/:kid', async (c) => {
  const row = await getSigningKey(c.env.DB, kidParam(c.req.param('kid')));
  if (!row) throw new HttpError(404, 'key_not_found', 'no such signing key');
  return c.json(signingKeyJson(row));
});

/** Revokes (the key stays listed with `revokedAt`); tokens signed with it fail everywhere within a minute. */
keyRoutes.delete('/:kid', async (c) => {
  const row = await revokeSigningKey(c.env.DB, kidParam(c.req.param('kid')));
  if (!row) throw new HttpError(404, 'key_not_found', 'no such signing key');
  return c.json(signingKeyJson(row));
});

function kidParam(kid: string): string {
  if (!KID_RE.test(kid)) throw new HttpError(404, 'key_not_found', 'no such signing key');
  return kid;
}
