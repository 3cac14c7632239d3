// Restream destinations' URLs and keys at rest: AES-256-GCM with a key derived (HKDF-SHA256) from
// INGEST_SECRET, bound to the row (the restream and stream ids are the additional data), so a D1
// export or backup does not hand out anyone's YouTube or Twitch key. Web Crypto only.
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** The encryption key of a deployment (cached per isolate). Changing INGEST_SECRET makes stored keys unreadable. */
function sealingKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey'])
      .then((base) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('edgelive'), info: encoder.encode('restream destinations v1') },
          base,
          { name: 'AES-GCM', length: 256 },
          false,
          ['encrypt', 'decrypt'],
        ),
      );
    keys.set(secret, key);
  }
  return key;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export interface DestinationSecret {
  url: string;
  streamKey: string;
}

function aad(restreamId: string, streamId: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${streamId}/${restreamId}`) as Uint8Array<ArrayBuffer>;
}

/** `v1.{iv}.{ciphertext}`, base64url. */
export async function sealDestination(secret: string, restreamId: string, streamId: string, value: DestinationSecret): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: aad(restreamId, streamId) },
    await sealingKey(secret),
    encoder.encode(JSON.stringify(value)),
  );
  return `v1.${b64url(iv)}.${b64url(new Uint8Array(sealed))}`;
}

/** The destination, or null when it cannot be read (another INGEST_SECRET sealed it, or it was tampered with). */
export async function openDestination(
  secret: string,
  restreamId: string,
  streamId: string,
  sealed: string,
): Promise<DestinationSecret | null> {
  const [version, iv, data] = sealed.split('.');
  if (version !== 'v1' || !iv || !data) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromB64url(iv), additionalData: aad(restreamId, streamId) },
      await sealingKey(secret),
      fromB64url(data),
    );
    const value = JSON.parse(decoder.decode(plain)) as DestinationSecret;
    return typeof value.url === 'string' && typeof value.streamKey === 'string' ? value : null;
  } catch {
    return null;
  }
}
