// The party-voice SFU on a real signalling listener and the real WebRTC stack; members are
// libdatachannel peers that send RTP of their own (tagged with who sent it) and receive on slots.
// Refusals allocate nothing (no peer connection before the Room's token is accepted), the seat
// caps answer 503 with Retry-After, every member receives every other member's packets on the slot
// the roster names — in its own payload type, the slot's SSRC, without the sender's header
// extensions — a leave reaches the others, a moderator's mute stops a member's audio at the node,
// and shutdown closes every peer connection.
import nodeDataChannel from 'node-datachannel';
import { afterEach, describe, expect, it } from 'vitest';
import { signVoiceSfuModeration, signVoiceSfuToken } from '../../core/auth/voice-sfu-token.ts';
import { VOICE_SFU_CHANNEL, parseVoiceSfuRoster, type VoiceSfuRoster } from '../../core/contracts/voice-sfu.ts';
import { createLogger } from '../../transcoder-node/log.ts';
import { isRtcp } from '../../transcoder-node/webrtc/rtp-forward.ts';
import { SfuEndpoint } from '../../transcoder-node/webrtc/sfu-endpoint.ts';
import { SignallingServer } from '../../transcoder-node/webrtc/signalling-server.ts';
import { WebRtcStack } from '../../transcoder-node/webrtc/stack.ts';

const SECRET = 'test-voice-sfu-secret';
const ROOM = 'party-1';
const log = createLogger({ service: 'test-voice-sfu' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Harness {
  base: string;
  stack: WebRtcStack;
  endpoint: SfuEndpoint;
  close(): Promise<void>;
}

async function start(limits: { maxSeats?: number; maxRoomSeats?: number } = {}): Promise<Harness> {
  const stack = new WebRtcStack({ bindAddress: '127.0.0.1' }, log);
  const endpoint = new SfuEndpoint({
    stack,
    logger: log,
    limits: { maxOfferBytes: 64 * 1024, maxPendingPerAddress: 4, maxSeats: limits.maxSeats ?? 16, maxRoomSeats: limits.maxRoomSeats ?? 8 },
    secret: SECRET,
    iceServers: [],
  });
  const server = new SignallingServer({ host: '127.0.0.1', port: 0, corsOrigins: ['http://worker.test'], logger: log, routes: [endpoint] });
  await server.listen();
  const h: Harness = {
    base: `http://127.0.0.1:${server.address().port}/voice`,
    stack,
    endpoint,
    async close() {
      endpoint.closeAll('test over');
      stack.closeAll();
      await server.close();
    },
  };
  cleanups.push(() => h.close());
  return h;
}

const tokenFor = (conn: string, opts: { room?: string; expIn?: number; secret?: string } = {}) =>
  signVoiceSfuToken(
    { room: opts.room ?? ROOM, conn, uid: `u-${conn}`, name: conn, exp: Math.floor(Date.now() / 1000) + (opts.expIn ?? 300) },
    opts.secret ?? SECRET,
  );
const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', ...headers }, body });
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
async function until(what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** What one member's slot received: packets by the tag of the member who sent them. */
interface SlotReceived {
  from: Map<string, number>;
  pts: Set<number>;
  ssrcs: Set<number>;
  extensions: number;
  gaps: number;
  lastSeq: number | null;
}

/**
 * A voice member as a libdatachannel peer: a sending Opus section (its microphone) in payload type
 * `pt`, `slots` receiving sections, and the roster channel. Its RTP payload starts with its tag, so
 * a receiver can tell whose audio a slot carries; every packet carries a header extension (as a
 * browser's do), which the SFU must not pass on.
 */
function member(tag: string, slots: number, pt: number) {
  const pc = new nodeDataChannel.PeerConnection(`member-${tag}`, {
    iceServers: [],
    bindAddress: '127.0.0.1',
    disableAutoNegotiation: true,
  });
  const ssrc = 0x1000 + tag.charCodeAt(0);
  const mic = new nodeDataChannel.Audio('mic', 'SendOnly');
  mic.addOpusCodec(pt);
  mic.addSSRC(ssrc, tag, `mic-${tag}`, `mic-${tag}`);
  const micTrack = pc.addTrack(mic);
  const received = new Map<string, SlotReceived>();
  const tracks = [micTrack];
  for (let i = 0; i < slots; i++) {
    const a = new nodeDataChannel.Audio(`s${i}`, 'RecvOnly');
    a.addOpusCodec(pt);
    const track = pc.addTrack(a);
    tracks.push(track);
    const r: SlotReceived = { from: new Map(), pts: new Set(), ssrcs: new Set(), extensions: 0, gaps: 0, lastSeq: null };
    received.set(`s${i}`, r);
    track.onMessage((msg) => {
      if (isRtcp(msg)) return;
      const x = (msg[0]! & 0x10) !== 0;
      if (x) r.extensions++;
      const payloadAt = 12 + 4 * (msg[0]! & 0x0f);
      const who = msg.subarray(payloadAt, payloadAt + 1).toString();
      r.from.set(who, (r.from.get(who) ?? 0) + 1);
      r.pts.add(msg[1]! & 0x7f);
      r.ssrcs.add(msg.readUInt32BE(8));
      const seq = msg.readUInt16BE(2);
      if (r.lastSeq !== null && seq !== ((r.lastSeq + 1) & 0xffff)) r.gaps++;
      r.lastSeq = seq;
    });
  }
  const channel = pc.createDataChannel(VOICE_SFU_CHANNEL);
  const state: { roster: VoiceSfuRoster | null } = { roster: null };
  channel.onMessage((msg) => {
    if (typeof msg === 'string') state.roster = parseVoiceSfuRoster(msg);
  });
  pc.setLocalDescription('offer');
  // Without our candidates the node reaches us only after we hold its answer (libdatachannel as an
  // offerer refuses a DTLS handshake that arrives before the answer).
  const offer = pc.localDescription()!.sdp.replace(/^a=candidate:.*\r?\n/gm, '');
  let seq = 1000;
  let timer: NodeJS.Timeout | null = null;
  const m = {
    tag,
    pc,
    offer,
    received,
    state,
    tracks,
    channel,
    sessionUrl: null as string | null,
    sent: 0,
    /** Sends a 20 ms Opus-sized packet every 20 ms: payload = tag, with a one-byte header extension. */
    talk() {
      timer = setInterval(() => {
        if (!micTrack.isOpen()) return;
        const header = Buffer.alloc(12);
        header[0] = 0x90; // V=2, X=1
        header[1] = pt;
        header.writeUInt16BE(seq++ & 0xffff, 2);
        header.writeUInt32BE((seq * 960) >>> 0, 4);
        header.writeUInt32BE(ssrc, 8);
        // RFC 8285 one-byte extension: id 4 (as a browser's mid), "0".
        const ext = Buffer.from([0xbe, 0xde, 0x00, 0x01, 0x40, 0x30, 0x00, 0x00]);
        const payload = Buffer.concat([Buffer.from(tag), Buffer.alloc(59, 7)]);
        if (micTrack.sendMessageBinary(Buffer.concat([header, ext, payload]))) m.sent++;
      }, 20);
    },
    silence() {
      if (timer) clearInterval(timer);
      timer = null;
    },
    /** Connects through the SFU (the answer is applied); resolves with the response. */
    async join(h: Harness, conn: string): Promise<Response> {
      const res = await post(`${h.base}/${ROOM}`, offer, { authorization: `Bearer ${await tokenFor(conn)}` });
      if (res.status !== 201) return res;
      this.sessionUrl = new URL(res.headers.get('location')!, h.base).toString();
      pc.setRemoteDescription(await res.text(), 'answer');
      return res;
    },
    /** Packets this member received from `other` (on whatever slot). */
    heard(other: string): number {
      let n = 0;
      for (const r of received.values()) n += r.from.get(other) ?? 0;
      return n;
    },
    close() {
      m.silence();
      pc.close();
    },
  };
  cleanups.push(() => m.close());
  return m;
}

describe('refusals allocate nothing', () => {
  it('no token, a forged, expired or other-room token: 401/403 JSON before the body is read, and no peer connection is ever created', async () => {
    const h = await start();
    const { offer } = member('a', 2, 111);
    const url = `${h.base}/${ROOM}`;
    const none = await post(url, offer);
    expect([none.status, none.headers.get('www-authenticate'), await errorCode(none)]).toEqual([401, 'Bearer', 'token_required']);
    const forged = await post(url, offer, { authorization: `Bearer ${await tokenFor('c-a', { secret: 'not-the-secret' })}` });
    expect([forged.status, await errorCode(forged)]).toEqual([401, 'token_invalid']);
    const tampered = (await tokenFor('c-a')).slice(0, -4) + 'AAAA';
    const bad = await post(url, offer, { authorization: `Bearer ${tampered}` });
    expect([bad.status, await errorCode(bad)]).toEqual([401, 'token_invalid']);
    const expired = await post(url, offer, { authorization: `Bearer ${await tokenFor('c-a', { expIn: -5 })}` });
    expect([expired.status, await errorCode(expired)]).toEqual([401, 'token_expired']);
    const elsewhere = await post(url, offer, { authorization: `Bearer ${await tokenFor('c-a', { room: 'party-2' })}` });
    expect([elsewhere.status, await errorCode(elsewhere)]).toEqual([403, 'token_wrong_room']);
    // A body far over the offer limit with a bad token is refused for the token, not its size: unread.
    const huge = await post(url, 'v=0\r\n' + 'a=x:'.padEnd(200_000, 'x'), { authorization: 'Bearer nope' });
    expect([huge.status, await errorCode(huge)]).toEqual([401, 'token_invalid']);
    // The moderation route takes only the Room's signature (a member's token is not one).
    const mod = await fetch(`${url}/moderation`, { method: 'POST', headers: { authorization: `Bearer ${await tokenFor('c-a')}` } });
    expect([mod.status, await errorCode(mod)]).toEqual([401, 'token_invalid']);
    expect(h.stack.counters).toEqual({ created: 0, open: 0 });
    expect(h.endpoint.counters).toMatchObject({ offers: 6, refused: 6, unauthorized: 6, accepted: 0 });
  });

  it('415, 413 and 400 (video, no slot, no roster channel) with a good token: nothing allocated', async () => {
    const h = await start();
    const url = `${h.base}/${ROOM}`;
    const auth = { authorization: `Bearer ${await tokenFor('c-a')}` };
    const json = await post(url, '{}', { ...auth, 'content-type': 'application/json' });
    expect([json.status, await errorCode(json)]).toEqual([415, 'unsupported_media_type']);
    const big = await post(url, 'v=0\r\n' + 'a=x:'.padEnd(80_000, 'x') + '\r\n', auth);
    expect([big.status, await errorCode(big)]).toEqual([413, 'too_large']);
    const { offer } = member('a', 1, 111);
    const video = await post(url, offer.replace(/m=audio (\d+) (\S+) 111\r\n/, 'm=video $1 $2 111\r\n'), auth);
    expect(video.status).toBe(400);
    const noSlot = await post(url, offer.replace(/a=recvonly/g, 'a=inactive'), auth);
    expect([noSlot.status, await errorCode(noSlot)]).toEqual([400, 'bad_direction']);
    const withoutChannel = offer
      .split(/(?=^m=)/m)
      .filter((section) => !section.startsWith('m=application'))
      .join('');
    const noChannel = await post(url, withoutChannel, auth);
    expect([noChannel.status, await errorCode(noChannel)]).toEqual([400, 'unsupported_media']);
    expect(h.stack.counters.created).toBe(0);
  });

  it('503 with Retry-After past the seats of a room and of the node; a member connecting again replaces its own seat', async () => {
    const h = await start({ maxSeats: 3, maxRoomSeats: 2 });
    const [a, b, c] = [member('a', 2, 111), member('b', 2, 111), member('c', 2, 111)];
    expect((await a.join(h, 'c-a')).status).toBe(201);
    expect((await b.join(h, 'c-b')).status).toBe(201);
    const full = await c.join(h, 'c-c');
    expect([full.status, full.headers.get('retry-after'), await errorCode(full)]).toEqual([503, '10', 'room_full']);
    // The same member again (a reconnection with more slots) is not refused for its own seat.
    const again = member('a', 3, 111);
    expect((await again.join(h, 'c-a')).status).toBe(201);
    expect(h.endpoint.rooms.seatsIn(ROOM)).toBe(2);
    // Another room takes the node's last seat; a fourth is refused for the node.
    const other = await post(`${h.base}/party-2`, member('d', 2, 111).offer, {
      authorization: `Bearer ${await tokenFor('c-d', { room: 'party-2' })}`,
    });
    expect(other.status).toBe(201);
    await other.text();
    const nodeFull = await post(`${h.base}/party-3`, member('e', 2, 111).offer, {
      authorization: `Bearer ${await tokenFor('c-e', { room: 'party-3' })}`,
    });
    expect([nodeFull.status, nodeFull.headers.get('retry-after'), await errorCode(nodeFull)]).toEqual([503, '10', 'at_capacity']);
    expect(h.endpoint.counters.full).toBe(2);
    // a, b, a again, d: the refused never got a peer connection.
    expect(h.stack.counters.created).toBe(4);
  });
});

describe('forwarding', () => {
  it('three members each receive the other two on the slots the roster names, in their own payload type and SSRC, without header extensions; a leave reaches the others', async () => {
    const h = await start();
    const pts = { a: 111, b: 109, c: 100 } as const;
    const members = (['a', 'b', 'c'] as const).map((t) => member(t, 3, pts[t]));
    for (const m of members) expect((await m.join(h, `c-${m.tag}`)).status).toBe(201);
    for (const m of members) m.talk();
    const [a, b, c] = members as [ReturnType<typeof member>, ReturnType<typeof member>, ReturnType<typeof member>];
    for (const m of members) {
      const others = members.filter((o) => o !== m);
      await until(`${m.tag} hearing the other two`, () => others.every((o) => m.heard(o.tag) >= 25));
      expect(m.heard(m.tag), 'nobody hears themself').toBe(0);
      // The roster says which slot carries whom, and that is where each one's packets came.
      const roster = m.state.roster!;
      expect(roster.overflow).toBe(0);
      for (const o of others) {
        const mid = Object.entries(roster.slots).find(([, conn]) => conn === `c-${o.tag}`)?.[0];
        expect(mid, `${m.tag}'s slot for ${o.tag}`).toBeDefined();
        const slot = m.received.get(mid!)!;
        expect([...slot.from.keys()]).toEqual([o.tag]);
        expect([...slot.pts]).toEqual([pts[m.tag as keyof typeof pts]]);
        expect(slot.ssrcs.size).toBe(1);
        expect(slot.extensions).toBe(0);
      }
    }
    // Six ordered pairs, each heard at least 25 packets: the node forwarded at least that many.
    expect(h.endpoint.rooms.counters.forwarded).toBeGreaterThanOrEqual(6 * 25);

    // b leaves (DELETE): a and c are told (their rosters free b's slot) and stop receiving b.
    expect((await fetch(b.sessionUrl!, { method: 'DELETE' })).status).toBe(200);
    for (const m of [a, c]) await until(`${m.tag}'s roster without b`, () => !Object.values(m.state.roster?.slots ?? {}).includes('c-b'));
    const before = { a: a.heard('b'), c: c.heard('b') };
    const aHearsC = a.heard('c');
    await sleep(500);
    expect({ a: a.heard('b'), c: c.heard('b') }).toEqual(before);
    expect(a.heard('c'), 'a still hears c').toBeGreaterThan(aHearsC + 10);
    expect(h.endpoint.rooms.seatsIn(ROOM)).toBe(2);

    // A new member d takes the freed slot: its flow continues the slot's sequence numbers.
    const d = member('d', 3, 111);
    expect((await d.join(h, 'c-d')).status).toBe(201);
    d.talk();
    await until('a hearing d', () => a.heard('d') >= 25);
    const slotOfD = Object.entries(a.state.roster!.slots).find(([, conn]) => conn === 'c-d')![0];
    const slot = a.received.get(slotOfD)!;
    expect(slot.ssrcs.size, 'one SSRC per slot, whoever it carries').toBe(1);
    expect(slot.gaps, 'a new member on a slot continues its sequence').toBeLessThanOrEqual(2);
  });

  it("a moderator's mute (signed by the Room) stops that member's audio at the node; lifting it lets it through again", async () => {
    const h = await start();
    const members = (['a', 'b', 'c'] as const).map((t) => member(t, 2, 111));
    for (const m of members) expect((await m.join(h, `c-${m.tag}`)).status).toBe(201);
    for (const m of members) m.talk();
    const [a, b, c] = members as [ReturnType<typeof member>, ReturnType<typeof member>, ReturnType<typeof member>];
    await until('everyone hearing b', () => a.heard('b') >= 10 && c.heard('b') >= 10);
    const moderate = async (forced: string[], seq: number) =>
      fetch(`${h.base}/${ROOM}/moderation`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await signVoiceSfuModeration({ room: ROOM, forced, seq, exp: Math.floor(Date.now() / 1000) + 60 }, SECRET)}`,
        },
      });
    expect((await moderate(['c-b'], 10)).status).toBe(204);
    await until('the rosters naming b as muted', () => [a, c].every((m) => m.state.roster?.forced.includes('c-b')));
    await sleep(200);
    const muted = { a: a.heard('b'), c: c.heard('b'), aHearsC: a.heard('c'), bSent: b.sent };
    await sleep(600);
    expect(b.sent, 'b still sends').toBeGreaterThan(muted.bSent + 10);
    expect({ a: a.heard('b'), c: c.heard('b') }, 'nobody receives b').toEqual({ a: muted.a, c: muted.c });
    expect(a.heard('c')).toBeGreaterThan(muted.aHearsC + 10);
    expect(h.endpoint.rooms.counters.dropped).toBeGreaterThan(20);
    // An older (replayed) moderation is ignored; a newer one lifts the mute.
    expect((await moderate([], 5)).status).toBe(204);
    await sleep(300);
    expect(a.heard('b')).toBe(muted.a);
    expect((await moderate([], 11)).status).toBe(204);
    await until('a hearing b again', () => a.heard('b') >= muted.a + 10);
  });

  it('stop closes every seat and its peer connection', async () => {
    const h = await start();
    const members = (['a', 'b'] as const).map((t) => member(t, 2, 111));
    for (const m of members) expect((await m.join(h, `c-${m.tag}`)).status).toBe(201);
    await until('both connected', () => h.endpoint.seats().every((s) => s.state === 'connected') && h.endpoint.seatCount === 2);
    expect(h.stack.counters.open).toBe(2);
    h.endpoint.closeAll('shutting down');
    await until('every seat gone', () => h.endpoint.seatCount === 0);
    expect(h.stack.counters.open).toBe(0);
    expect(h.endpoint.rooms.roomCount).toBe(0);
  });
});
