// OriginClient against a local HTTP server standing in for the origin: signatures the Worker's
// verifier accepts, keep-alive connections, no compressed answers, and errors mapped to
// OriginError (retryable or not) as the uploader needs them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADER_META, HEADER_NONCE, signIngestRequest, verifyIngestRequest } from '../../core/contracts/ingest-protocol.ts';
import { OriginClient, OriginError, signRequestSync } from '../../transcoder-node/origin-client.ts';

const SECRET = 'origin-client-test-secret';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Uint8Array;
  socket: Socket;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function fakeOrigin(answer: (seen: Seen, res: ServerResponse) => void) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: new Uint8Array(Buffer.concat(chunks)),
        socket: req.socket,
      };
      seen.push(s);
      answer(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new OriginClient({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    secret: SECRET,
    timeoutMs: 300,
  });
  closers.push(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { seen, client };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('OriginClient', () => {
  it('signs pushes so that the origin verifier accepts them, the same signature as signIngestRequest', async () => {
    const now = 1_795_000_000_000;
    const body = new Uint8Array([0, 1, 2, 250, 251]);
    const path = '/ingest/v1/st1/3/720p/12.4.m4s';
    const nonce = '0123456789abcdef0123456789abcdef';
    const metaHeader = { [HEADER_META]: '{"duration":0.2}' };
    expect(signRequestSync(SECRET, 'PUT', path, body, metaHeader, now, nonce)).toEqual(
      await signIngestRequest(SECRET, 'PUT', path, body, { headers: metaHeader, now, nonce }),
    );
    expect(signRequestSync(SECRET, 'POST', '/ingest/v1/st1/3/end', null, {}, now, nonce)).toEqual(
      await signIngestRequest(SECRET, 'POST', '/ingest/v1/st1/3/end', null, { now, nonce }),
    );
    // A fresh nonce per request: a retry is never a replay.
    expect(signRequestSync(SECRET, 'PUT', path, body, {}, now)[HEADER_NONCE]).not.toBe(
      signRequestSync(SECRET, 'PUT', path, body, {}, now)[HEADER_NONCE],
    );

    const { seen, client } = await fakeOrigin((_s, res) => json(res, 201, { ok: true, duplicate: false }));
    const meta = { duration: 0.2, independent: true, programDateTime: now };
    await client.push('st1', 3, '720p', '12.4.m4s', body, meta);
    const s = seen[0]!;
    expect(s.method).toBe('PUT');
    expect(s.url).toBe(path);
    expect(s.body).toEqual(body);
    expect(s.headers['content-length']).toBe(String(body.byteLength));
    expect(JSON.parse(s.headers[HEADER_META] as string)).toEqual(meta);
    const headers = new Headers(Object.entries(s.headers).map(([k, v]) => [k, String(v)]));
    expect(await verifyIngestRequest(SECRET, 'PUT', s.url, headers, s.body)).toEqual({
      ok: true,
      nonce: headers.get(HEADER_NONCE),
      timestamp: Number(headers.get('x-edgelive-timestamp')),
    });
    // The metadata is signed: the same request with other metadata is not.
    headers.set(HEADER_META, JSON.stringify({ ...meta, duration: 9 }));
    expect(await verifyIngestRequest(SECRET, 'PUT', s.url, headers, s.body)).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('asks for uncompressed answers and reuses one keep-alive connection for pushes in a row', async () => {
    const { seen, client } = await fakeOrigin((_s, res) => json(res, 201, { ok: true }));
    for (let i = 0; i < 3; i++) await client.push('st1', 1, 'v', `1.${i}.m4s`, new Uint8Array([i]), {});
    expect(seen.map((s) => s.headers['accept-encoding'])).toEqual(['identity', 'identity', 'identity']);
    expect(new Set(seen.map((s) => s.socket)).size).toBe(1);
  });

  it('maps answers to OriginError: 4xx verdicts are final, 5xx and 429 are retryable', async () => {
    const answers: Array<[number, unknown]> = [
      [409, { error: { code: 'stale_epoch', message: 'epoch 1 no longer holds the ingest lease' } }],
      [503, { error: { code: 'predecessor_missing', message: 'later' } }],
      [429, { error: { code: 'rate_limited', message: 'slow down' } }],
      [500, 'not json'],
    ];
    const { client } = await fakeOrigin((_s, res) => {
      const [status, body] = answers.shift()!;
      if (typeof body === 'string') res.writeHead(status).end(body);
      else json(res, status, body);
    });
    const errors: OriginError[] = [];
    for (let i = 0; i < 4; i++) {
      await client.push('st1', 1, 'v', '1.0.m4s', new Uint8Array([1]), {}).catch((e: OriginError) => errors.push(e));
    }
    expect(errors.map((e) => [e.status, e.code, e.retryable])).toEqual([
      [409, 'stale_epoch', false],
      [503, 'predecessor_missing', true],
      [429, 'rate_limited', true],
      [500, 'http_error', true],
    ]);
  });

  it('a refused connection or an origin that does not answer in time is a retryable network error', async () => {
    const { client } = await fakeOrigin(() => {
      // Never answers.
    });
    const slow = await client.push('st1', 1, 'v', '1.0.m4s', new Uint8Array([1]), {}).catch((e: OriginError) => e);
    expect(slow).toBeInstanceOf(OriginError);
    expect([(slow as OriginError).status, (slow as OriginError).code, (slow as OriginError).retryable]).toEqual([0, 'network', true]);

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const nobody = new OriginClient({ baseUrl: `http://127.0.0.1:${port}`, secret: SECRET });
    const refused = await nobody.end('st1', 1).catch((e: OriginError) => e);
    nobody.close();
    expect([(refused as OriginError).status, (refused as OriginError).retryable]).toEqual([0, true]);
  });
});
