// The media node as one value a caller starts and stops: RTMP, RTMPS, SRT and WHIP listeners, the
// key check and lease at the origin, the publishers' ladders, WHEP playback of realtime streams from
// the same ladders, the party-voice SFU, health and metrics over HTTP, and the registry heartbeat. main.ts starts one from the environment; a test starts one on free ports.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdmissionControl } from './admission.ts';
import type { MediaNodeConfig } from './config.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { OriginClient, OriginError } from './origin-client.ts';
import { OverloadGuard } from './overload.ts';
import { Publishers } from './publishers.ts';
import { RegistryClient } from './registry-client.ts';
import { RtmpIngestServer, type RtmpIngestOptions } from './rtmp/server.ts';
import { Reject } from './srt/packet.ts';
import { SrtIngestServer } from './srt/server.ts';
import { publisherFrom, type IngestProtocol, type Publisher } from './publisher.ts';
import { SignallingServer } from './webrtc/signalling-server.ts';
import { WebRtcStack } from './webrtc/stack.ts';
import { WhipEndpoint } from './webrtc/whip-endpoint.ts';
import { detectVideoEncoders } from './video-encoders.ts';
import { WhepEndpoint } from './webrtc/whep-endpoint.ts';
import { RealtimeFeeds } from './webrtc/realtime-feed.ts';
import { SfuEndpoint } from './webrtc/sfu-endpoint.ts';
import type { AuthorizeResponse } from '../core/contracts/ingest-protocol.ts';
import type { RestreamState } from '../core/contracts/restream.ts';

export interface MediaNode {
  /** Where each listener can be reached (what the node registers with the origin), and /health. */
  readonly urls: { rtmp: string; rtmps?: string; srt?: string; whip?: string; whep?: string; voiceSfu?: string; health: string };
  /** Publishers live on this node. */
  readonly sessions: () => number;
  /** Reads the RTMPS certificate files again (SIGHUP): a renewal without dropping publishers. */
  reloadCertificate(): void;
  /**
   * Leaves the registry, ends every publisher (its ladder stopped, pending pushes flushed, the
   * origin told), then closes every listener. Resolves once nothing of the node is left running.
   */
  stop(reason: string): Promise<void>;
}

/** Starts a media node with `config` (checked by configProblem first); resolves once it listens. */
export async function startMediaNode(config: MediaNodeConfig, log: Logger): Promise<MediaNode> {
  /** The RTMPS certificate, read again on SIGHUP (a renewal without dropping publishers). */
  const readRtmpsCertificate = () => ({ cert: readFileSync(config.rtmpsCertFile!), key: readFileSync(config.rtmpsKeyFile!) });

  const metrics: Metrics = new Metrics({
    nodeId: config.nodeId,
    region: config.region,
    capacity: config.capacity,
    sessions: () => publishers.countByProtocol(),
    overloaded: () => overload.overloaded(),
    sfu: () => ({ rooms: sfu?.rooms.roomCount ?? 0, seats: sfu?.seatCount ?? 0, ...(sfu?.rooms.counters ?? { forwarded: 0, dropped: 0 }) }),
    restreams: () => {
      const byState: Partial<Record<RestreamState, number>> = {};
      for (const p of publishers.values()) for (const r of p.restreams.statuses()) byState[r.state] = (byState[r.state] ?? 0) + 1;
      return byState;
    },
    whep: () => ({ viewers: whep.viewerCount, maxViewers: config.webrtc.whep.maxViewers, counters: whep.counters }),
  });
  const origin = new OriginClient({
    baseUrl: config.originUrl,
    secret: config.ingestSecret,
    onPushError: (err) => metrics.pushFailed(err.code, err.retryable),
  });
  const overload = new OverloadGuard({ ...config.overload, logger: log.child({ component: 'overload' }), metrics });
  // Before any publisher: every ladder of this node uses what is found here.
  const encoders = await detectVideoEncoders({
    want: config.videoEncoder,
    vaapiDevice: config.vaapiDevice,
    logger: log.child({ component: 'encoders' }),
  });
  // The real-time (WHEP) feeds of the streams this node holds; none when WebRTC is off.
  const realtimeFeeds = config.webrtc.http === null ? undefined : new RealtimeFeeds({ logger: log.child({ component: 'whep' }) });
  const publishers = new Publishers({
    origin,
    logger: log,
    metrics,
    overload,
    nodeId: config.nodeId,
    region: config.region,
    thumbnailIntervalSeconds: config.thumbnailIntervalSeconds,
    segmentCopy: config.segmentCopy,
    restream: config.restream,
    encoders,
    ...(realtimeFeeds ? { realtimeFeeds, realtimeKeyframeIntervalSeconds: config.webrtc.whep.keyframeIntervalMs / 1000 } : {}),
  });
  const admission = new AdmissionControl({
    capacity: config.capacity,
    liveKeys: () => publishers.liveKeys(),
    overloaded: () => overload.overloaded(),
  });

  /** How long a returning publisher waits for its previous session on this node to close. */
  const RECONNECT_WAIT_MS = 3_000;
  /** `byNode`: refused for this node's load (capacity, overload), not for the key: the publisher is told why. */
  type Refusal = { ok: false; reason: string; code: string; byNode: boolean };
  /** The admission slot of each lease granted, released once its publisher starts (or lapsing). */
  const admittedLeases = new WeakMap<AuthorizeResponse, () => void>();
  /**
   * The capacity check, then the key check and lease, asked before a publisher (RTMP, SRT; WHIP
   * calls it too) may send media. An accepted publisher is then started with `startPublisher`.
   */
  async function authorizeKey(streamKey: string, protocol: IngestProtocol): Promise<{ ok: true; context: AuthorizeResponse } | Refusal> {
    // A publisher coming back to this node first lets its previous session (whose connection has
    // gone) close, a few seconds at most: until it tells the origin it stopped, the origin counts it
    // live and refuses a second publisher (the stream's takeover policy, docs/api.md).
    await publishers.settled(streamKey, RECONNECT_WAIT_MS);
    const admitted = admission.admit(streamKey);
    if (!admitted.ok) {
      metrics.publisherRefused(protocol, admitted.code);
      log.warn('publisher refused', { protocol, code: admitted.code, reason: admitted.reason });
      return { ok: false, reason: admitted.reason, code: admitted.code, byNode: true };
    }
    try {
      const lease = await origin.authorize(streamKey, config.nodeId, config.region);
      admittedLeases.set(lease, admitted.release);
      return { ok: true as const, context: lease };
    } catch (err) {
      admitted.release();
      const code = err instanceof OriginError ? err.code : 'error';
      metrics.publisherRefused(protocol, code);
      return { ok: false, reason: err instanceof OriginError ? `${err.code}: ${err.message}` : String(err), code, byNode: false };
    }
  }

  /** Starts the pipeline of a publisher that `authorizeKey` accepted, whatever its protocol. */
  function startPublisher(publisher: Publisher, streamKey: string): void {
    publishers.start({ publisher, streamKey });
    // It counts as live from here: its admission slot is no longer pending.
    admittedLeases.get(publisher.lease)?.();
  }

  const rtmpOptions: Omit<RtmpIngestOptions<AuthorizeResponse>, 'port' | 'logger'> = {
    host: config.rtmpHost,
    ...config.rtmpLimits,
    // The key is checked (and the stream's lease taken) before the publisher may send media.
    authorize: async ({ streamKey }) => {
      const verdict = await authorizeKey(streamKey, 'rtmp');
      // A full or overloaded node says why in the onStatus description (ffmpeg and OBS show it).
      return !verdict.ok && verdict.byNode ? { ...verdict, description: verdict.reason } : verdict;
    },
    onPublish: (session) => {
      startPublisher(
        publisherFrom({
          protocol: 'rtmp',
          lease: session.context!,
          remoteAddress: session.remoteAddress,
          media: session.flv,
          container: 'flv',
          close: (reason) => session.close(reason),
          onEnd: (fn) => session.once('end', fn),
        }),
        session.streamKey,
      );
    },
  };
  const rtmp = new RtmpIngestServer<AuthorizeResponse>({ ...rtmpOptions, port: config.rtmpPort, logger: log.child({ component: 'rtmp' }) });
  // RTMPS: the same publishers over TLS on their own port (OBS's rtmps:// URLs).
  const rtmps =
    config.rtmpsPort === null
      ? null
      : new RtmpIngestServer<AuthorizeResponse>({
          ...rtmpOptions,
          port: config.rtmpsPort,
          tls: readRtmpsCertificate(),
          logger: log.child({ component: 'rtmps' }),
        });

  // SRT publishers on one UDP port; the stream id is checked exactly like an RTMP key, before the
  // handshake is answered (so a refused publisher never gets to send media).
  const srt =
    config.srtPort === null
      ? null
      : new SrtIngestServer<AuthorizeResponse>({
          host: config.srtHost,
          port: config.srtPort,
          passphrase: config.srtPassphrase,
          ...config.srtLimits,
          logger: log.child({ component: 'srt' }),
          authorize: async ({ streamKey }) => {
            const verdict = await authorizeKey(streamKey, 'srt');
            // SRT has no text in a rejection: a full or overloaded node answers SRT_REJX_OVERLOAD.
            return !verdict.ok && verdict.byNode ? { ...verdict, rejection: Reject.X_OVERLOAD } : verdict;
          },
          onPublish: (session) => {
            const counted = metrics.trackSrt(session.stats);
            startPublisher(
              publisherFrom({
                protocol: 'srt',
                lease: session.context,
                remoteAddress: session.remoteAddress,
                media: session.media,
                container: 'mpegts',
                close: (reason) => session.close(reason),
                onEnd: (fn) =>
                  session.onEnd((code, message) => {
                    counted();
                    fn({ code, message });
                  }),
              }),
              session.streamKey,
            );
          },
        });

  // WebRTC: one stack for the node, WHIP ingest on the signalling listener. The key is checked exactly
  // like an RTMP key, before any peer connection exists.
  const webrtc = new WebRtcStack(config.webrtc.stack, log.child({ component: 'webrtc' }));
  const whip = new WhipEndpoint({
    stack: webrtc,
    logger: log.child({ component: 'whip' }),
    limits: { ...config.webrtc.whip, maxSessions: config.webrtc.whip.maxSessions ?? config.capacity },
    authorize: (streamKey) => authorizeKey(streamKey, 'whip'),
    onPublisher: (publisher, streamKey) => startPublisher(publisher, streamKey),
    abandon: (lease) =>
      void origin.end(lease.streamId, lease.epoch).catch((err) => log.warn('could not give back an unused lease', { error: err })),
    iceServers: config.webrtc.stack.iceServers ?? [],
    maxBitrate: config.webrtc.whip.maxBitrate,
    mediaTimeoutMs: config.webrtc.whip.mediaTimeoutMs,
  });
  // WHEP playback: viewers the origin sent here with a ticket (checked with INGEST_SECRET) receive
  // the real-time feed of a stream this node holds.
  const whep = new WhepEndpoint({
    stack: webrtc,
    logger: log.child({ component: 'whep' }),
    limits: config.webrtc.whep,
    secret: config.ingestSecret,
    feeds: realtimeFeeds ?? new RealtimeFeeds({ logger: log }),
    iceServers: config.webrtc.stack.iceServers ?? [],
  });
  // Party voice past the mesh: members' microphones forwarded to each other, with tokens their Room
  // signed (VOICE_SFU_SECRET). Not served without the secret.
  const sfu =
    config.webrtc.sfu === null
      ? null
      : new SfuEndpoint({
          stack: webrtc,
          logger: log.child({ component: 'sfu' }),
          limits: config.webrtc.sfu,
          secret: config.webrtc.sfu.secret,
          iceServers: config.webrtc.stack.iceServers ?? [],
        });
  const signalling =
    config.webrtc.http === null
      ? null
      : new SignallingServer({
          ...config.webrtc.http,
          logger: log.child({ component: 'signalling' }),
          routes: sfu ? [whip, whep, sfu] : [whip, whep],
        });

  const health = createServer((req, res) => {
    const body = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      return body(200, {
        ok: true,
        service: 'edgelive-transcoder',
        nodeId: config.nodeId,
        region: config.region,
        capacity: config.capacity,
        overloaded: overload.overloaded(),
        videoEncoders: encoders,
        sessions: [...publishers.values()].map(({ protocol, session: s, restreams }) => ({
          streamId: s.streamId,
          protocol,
          epoch: s.epoch,
          startedAt: new Date(s.startedAt).toISOString(),
          pendingPushes: s.pendingPushes,
          ffmpegPid: s.ffmpegPid,
          restreams: restreams.statuses(),
        })),
        whip: whip.sessions(),
        whep: { viewers: whep.viewers(), maxViewers: config.webrtc.whep.maxViewers, counters: { ...whep.counters } },
        sfu: sfu
          ? {
              rooms: sfu.rooms.roomCount,
              seats: sfu.seats(),
              maxSeats: config.webrtc.sfu!.maxSeats,
              maxRoomSeats: config.webrtc.sfu!.maxRoomSeats,
              counters: { ...sfu.counters, ...sfu.rooms.counters },
            }
          : null,
        webrtc: { peersCreated: webrtc.counters.created, peersOpen: webrtc.counters.open },
      });
    }
    if (path === '/health/realtime') {
      // The real-time feeds (ports, packets, viewers), for operators and the WHEP benchmark.
      void (realtimeFeeds?.list() ?? Promise.resolve([])).then((feeds) => body(200, { feeds }));
      return;
    }
    if (path === '/metrics') {
      void metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (err: unknown) => body(500, { error: { code: 'internal_error', message: String(err) } }),
      );
      return;
    }
    if (path === '/metrics.json') {
      return body(200, {
        nodeId: config.nodeId,
        sessions: publishers.size,
        ...metrics.snapshot(),
        webrtc: { ...webrtc.counters },
        whip: { ...whip.counters, sessions: whip.sessions().length },
        whep: { ...whep.counters, viewers: whep.viewerCount },
        sfu: sfu ? { ...sfu.counters, ...sfu.rooms.counters, rooms: sfu.rooms.roomCount, seats: sfu.seatCount } : null,
      });
    }
    body(404, { error: { code: 'not_found', message: 'try /health, /metrics or /metrics.json' } });
  });

  await rtmp.listen();
  await rtmps?.listen();
  await srt?.listen();
  await signalling?.listen();
  await new Promise<void>((resolve, reject) => {
    health.once('error', reject);
    health.listen(config.healthPort, config.healthHost, resolve);
  });
  const healthPort = (health.address() as AddressInfo).port;

  // Public URLs default to what was bound (loopback when bound to every interface: local stacks).
  const publicHost = (bound: string) => (bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound);
  const publicRtmpUrl = config.publicRtmpUrl ?? `rtmp://${publicHost(config.rtmpHost)}:${rtmp.address().port}/live`;
  const publicSrtUrl = srt ? (config.publicSrtUrl ?? `srt://${publicHost(config.srtHost)}:${srt.address().port}`) : undefined;
  const webrtcBaseUrl = signalling
    ? (config.webrtc.publicUrl ?? `http://${publicHost(config.webrtc.http!.host)}:${signalling.address().port}`)
    : undefined;
  const whipUrl = webrtcBaseUrl ? `${webrtcBaseUrl}/whip` : undefined;
  const whepUrl = webrtcBaseUrl ? `${webrtcBaseUrl}${whep.prefix}` : undefined;
  const voiceSfuUrl = webrtcBaseUrl && sfu ? `${webrtcBaseUrl}${sfu.prefix}` : undefined;
  const publicRtmpsUrl = rtmps
    ? (config.publicRtmpsUrl ?? `rtmps://${publicHost(config.rtmpHost)}:${rtmps.address().port}/live`)
    : undefined;
  const registryClient = new RegistryClient({
    originUrl: config.originUrl,
    secret: config.ingestSecret,
    node: {
      nodeId: config.nodeId,
      region: config.region,
      latitude: config.latitude,
      longitude: config.longitude,
      rtmpUrl: publicRtmpUrl,
      rtmpsUrl: publicRtmpsUrl,
      srtUrl: publicSrtUrl,
      whipUrl,
      whepUrl,
      capacity: config.capacity,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
    },
    sessions: () => publishers.size,
    logger: log.child({ component: 'registry' }),
    onCall: (call, ok) => metrics.registryCall(call, ok),
  });
  registryClient.start();
  log.info('transcoder ready', {
    rtmp: `${publicRtmpUrl}/{streamKey}`,
    rtmps: publicRtmpsUrl ? `${publicRtmpsUrl}/{streamKey}` : null,
    srt: publicSrtUrl ? `${publicSrtUrl}?streamid={streamKey}` : null,
    whip: whipUrl ?? null,
    whep: whepUrl ?? null,
    voiceSfu: voiceSfuUrl ?? null,
    whepMaxViewers: config.webrtc.whep.maxViewers,
    health: `http://${publicHost(config.healthHost)}:${healthPort}/health`,
    capacity: config.capacity,
    origin: config.originUrl,
    region: config.region,
  });

  let stopping: Promise<void> | null = null;
  async function stop(reason: string): Promise<void> {
    log.info('shutting down', { reason, sessions: publishers.size });
    // Leave the registry first, so no new stream is sent here while the sessions wind down.
    await registryClient.stop();
    await Promise.all(
      [...publishers.values()].map(async (p) => {
        await p.stop(`transcoder ${reason}`);
        await p.closed;
        await p.restreamsDone();
      }),
    );
    // Peer connections close with their sessions; any left (still answering) close here.
    whip.closeAll(`transcoder ${reason}`);
    whep.closeAll(`transcoder ${reason}`);
    sfu?.closeAll(`transcoder ${reason}`);
    await realtimeFeeds?.closeAll(`transcoder ${reason}`);
    webrtc.closeAll();
    await signalling?.close();
    await rtmp.close();
    await rtmps?.close();
    await srt?.close();
    await new Promise<void>((resolve) => health.close(() => resolve()));
    health.closeAllConnections();
    log.info('stopped');
  }

  return {
    urls: {
      rtmp: publicRtmpUrl,
      rtmps: publicRtmpsUrl,
      srt: publicSrtUrl,
      whip: whipUrl,
      whep: whepUrl,
      voiceSfu: voiceSfuUrl,
      health: `http://${publicHost(config.healthHost)}:${healthPort}/health`,
    },
    sessions: () => publishers.size,
    reloadCertificate() {
      if (!rtmps) return;
      rtmps.setCertificate(readRtmpsCertificate());
      log.info('rtmps certificate reloaded', { certFile: config.rtmpsCertFile });
    },
    stop: (reason) => (stopping ??= stop(reason)),
  };
}
