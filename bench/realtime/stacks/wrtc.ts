// @roamhq/wrtc: libwebrtc with the browser API. It hands out decoded pictures and audio samples
// (nonstandard sinks) and sends only what it encodes itself (sources), per peer connection: no
// access to encoded frames or RTP. Its build has no H.264 (VP8/VP9/AV1 only).
import { spawn, type ChildProcess } from 'node:child_process';
import { loadCandidate, type BenchStack, type IngestHandle, type IngestStats } from './types.ts';

/* The few wrtc types the benchmark touches (wrtc is not a dependency of the project). */
interface Track {
  kind: string;
  stop(): void;
}
interface PeerConnection {
  iceGatheringState: string;
  onicegatheringstatechange: (() => void) | null;
  ontrack: ((e: { track: Track }) => void) | null;
  addTrack(track: Track): unknown;
  setRemoteDescription(d: { type: string; sdp: string }): Promise<void>;
  createAnswer(): Promise<{ type: string; sdp: string }>;
  setLocalDescription(d: { type: string; sdp: string }): Promise<void>;
  localDescription: { sdp: string } | null;
  close(): void;
}
interface Wrtc {
  RTCPeerConnection: new (config?: unknown) => PeerConnection;
  nonstandard: {
    RTCVideoSink: new (t: Track) => { onframe: ((e: { frame: { data: Uint8Array } }) => void) | null; stop(): void };
    RTCAudioSink: new (t: Track) => { ondata: ((e: { samples: Int16Array }) => void) | null; stop(): void };
    RTCVideoSource: new () => { createTrack(): Track; onFrame(f: { width: number; height: number; data: Uint8ClampedArray }): void };
    RTCAudioSource: new () => {
      createTrack(): Track;
      onData(d: { samples: Int16Array; sampleRate: number; bitsPerSample: number; channelCount: number; numberOfFrames: number }): void;
    };
  };
}

const WIDTH = 1280;
const HEIGHT = 720;

export function createStack(): BenchStack {
  const w = loadCandidate<Wrtc>('@roamhq/wrtc');
  const viewers: PeerConnection[] = [];
  let videoSource: InstanceType<Wrtc['nonstandard']['RTCVideoSource']> | null = null;
  let audioSource: InstanceType<Wrtc['nonstandard']['RTCAudioSource']> | null = null;
  let videoTrack: Track | null = null;
  let audioTrack: Track | null = null;
  let raw: ChildProcess | null = null;

  async function answer(pc: PeerConnection, offer: string, beforeAnswer?: () => void): Promise<string> {
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    beforeAnswer?.();
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => (pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve()));
    }
    return pc.localDescription!.sdp;
  }

  return {
    name: '@roamhq/wrtc',
    viewerVideoCodec: 'VP8',
    async ingest(offer): Promise<IngestHandle> {
      const pc = new w.RTCPeerConnection();
      const startedAt = Date.now();
      const stats: IngestStats = {
        videoFrames: 0,
        keyframes: 0,
        audioFrames: 0,
        videoBytes: 0,
        audioBytes: 0,
        firstFrameMs: null,
        frameKind: 'i420',
        codec: /a=rtpmap:\d+ H264/.test(offer) ? 'H264 offered' : 'VP8+opus',
      };
      const sinks: Array<{ stop(): void }> = [];
      pc.ontrack = ({ track }) => {
        if (track.kind === 'video') {
          const sink = new w.nonstandard.RTCVideoSink(track);
          sink.onframe = ({ frame }) => {
            stats.videoFrames++;
            stats.videoBytes += frame.data.byteLength;
            stats.firstFrameMs ??= Date.now() - startedAt;
          };
          sinks.push(sink);
        } else {
          const sink = new w.nonstandard.RTCAudioSink(track);
          sink.ondata = ({ samples }) => {
            stats.audioFrames++;
            stats.audioBytes += samples.byteLength;
          };
          sinks.push(sink);
        }
      };
      const sdp = await answer(pc, offer);
      return {
        answer: sdp,
        stats: () => stats,
        close: () => {
          for (const s of sinks) s.stop();
          pc.close();
        },
      };
    },
    async addViewer(offer) {
      if (!videoTrack || !audioTrack) throw new Error('start the raw source first');
      const pc = new w.RTCPeerConnection();
      const sdp = await answer(pc, offer, () => {
        pc.addTrack(videoTrack!);
        pc.addTrack(audioTrack!);
      });
      viewers.push(pc);
      return sdp;
    },
    // The clip is decoded once (ffmpeg) and every peer connection encodes it again itself.
    startRawSource(clipPath: string) {
      videoSource = new w.nonstandard.RTCVideoSource();
      audioSource = new w.nonstandard.RTCAudioSource();
      videoTrack = videoSource.createTrack();
      audioTrack = audioSource.createTrack();
      raw = spawn(
        'ffmpeg',
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-nostdin',
          '-re',
          '-stream_loop',
          '-1',
          '-i',
          clipPath,
          '-map',
          '0:v',
          '-f',
          'rawvideo',
          '-pix_fmt',
          'yuv420p',
          '-s',
          `${WIDTH}x${HEIGHT}`,
          'pipe:1',
          '-map',
          '0:a',
          '-f',
          's16le',
          '-ac',
          '1',
          '-ar',
          '48000',
          'pipe:3',
        ],
        { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] },
      );
      const frameBytes = (WIDTH * HEIGHT * 3) / 2;
      let pending = Buffer.alloc(0);
      raw.stdout!.on('data', (chunk: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        while (pending.length >= frameBytes) {
          const frame = new Uint8ClampedArray(pending.subarray(0, frameBytes));
          pending = pending.subarray(frameBytes);
          videoSource!.onFrame({ width: WIDTH, height: HEIGHT, data: frame });
        }
      });
      const chunkBytes = 480 * 2; // 10 ms of 48 kHz mono s16
      let audio = Buffer.alloc(0);
      (raw.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
        audio = audio.length ? Buffer.concat([audio, chunk]) : chunk;
        while (audio.length >= chunkBytes) {
          const samples = new Int16Array(480);
          Buffer.from(samples.buffer).set(audio.subarray(0, chunkBytes));
          audio = audio.subarray(chunkBytes);
          audioSource!.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
        }
      });
    },
    viewerCount: () => viewers.length,
    closeViewers() {
      for (const pc of viewers.splice(0)) pc.close();
      raw?.kill('SIGKILL');
      raw = null;
      videoTrack?.stop();
      audioTrack?.stop();
      videoTrack = audioTrack = null;
    },
  };
}
