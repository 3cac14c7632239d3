// What the Go-live page sends: a camera or the screen (getDisplayMedia) at a chosen quality, and a
// microphone or none. Each change replaces one track; the page hands the new one to the publisher
// (a sender's replaceTrack, no renegotiation) and to the preview.

export type VideoSource = 'camera' | 'screen';

export const QUALITIES = {
  '360p': { width: 640, height: 360, bitrate: 800_000 },
  '540p': { width: 960, height: 540, bitrate: 1_500_000 },
  '720p': { width: 1280, height: 720, bitrate: 2_500_000 },
  '1080p': { width: 1920, height: 1080, bitrate: 4_500_000 },
} as const;
export type Quality = keyof typeof QUALITIES;

export interface DeviceChoice {
  id: string;
  label: string;
}

export class LocalMedia {
  video: MediaStreamTrack | null = null;
  audio: MediaStreamTrack | null = null;
  source: VideoSource = 'camera';
  quality: Quality = '720p';
  cameraId: string | null = null;
  /** null: the default microphone; 'none': no audio track at all. */
  micId: string | null = null;
  /** Called when a track was replaced (or ended by the browser, e.g. "Stop sharing"). */
  onTrack: (kind: 'video' | 'audio', track: MediaStreamTrack | null) => void = () => undefined;

  /** The camera (or the one chosen) at the chosen quality. */
  async useCamera(deviceId: string | null = this.cameraId): Promise<void> {
    const { width, height } = QUALITIES[this.quality];
    const stream = await navigator.mediaDevices.getUserMedia({
      video: {
        ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
        width: { ideal: width },
        height: { ideal: height },
        frameRate: { ideal: 30 },
      },
    });
    const track = stream.getVideoTracks()[0]!;
    // Motion: a camera keeps its frame rate and gives up resolution first under a tight budget.
    track.contentHint = 'motion';
    this.cameraId = track.getSettings().deviceId ?? deviceId;
    this.source = 'camera';
    this.#setVideo(track);
  }

  /** The screen, a window or a tab (the browser asks which); back to the camera when sharing stops. */
  async useScreen(): Promise<void> {
    const { width, height } = QUALITIES[this.quality];
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { width: { max: width }, height: { max: height }, frameRate: { ideal: 30 } },
      audio: false,
    });
    const track = stream.getVideoTracks()[0]!;
    // Detail: text on a screen stays sharp; the frame rate gives way first.
    track.contentHint = 'detail';
    track.addEventListener('ended', () => {
      if (this.video === track) void this.useCamera().catch(() => this.#setVideo(null));
    });
    this.source = 'screen';
    this.#setVideo(track);
  }

  async useMicrophone(deviceId: string | null | 'none' = this.micId): Promise<void> {
    this.micId = deviceId;
    if (deviceId === 'none') return this.#setAudio(null);
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), echoCancellation: true, noiseSuppression: true },
    });
    const track = stream.getAudioTracks()[0]!;
    if (!deviceId) this.micId = null;
    this.#setAudio(track);
  }

  /** Mutes the microphone without removing its track: the stream keeps an (silent) audio track. */
  setMuted(muted: boolean): void {
    if (this.audio) this.audio.enabled = !muted;
  }

  /** Cameras and microphones by label (labels exist once a permission was granted). */
  async devices(): Promise<{ cameras: DeviceChoice[]; microphones: DeviceChoice[] }> {
    const all = await navigator.mediaDevices.enumerateDevices();
    const pick = (kind: MediaDeviceKind, noun: string) =>
      all.filter((d) => d.kind === kind && d.deviceId).map((d, i) => ({ id: d.deviceId, label: d.label || `${noun} ${i + 1}` }));
    return { cameras: pick('videoinput', 'Camera'), microphones: pick('audioinput', 'Microphone') };
  }

  /** Stops every track (the page is leaving). */
  release(): void {
    this.video?.stop();
    this.audio?.stop();
  }

  #setVideo(track: MediaStreamTrack | null): void {
    const old = this.video;
    this.video = track;
    this.onTrack('video', track);
    if (old && old !== track) old.stop();
  }

  #setAudio(track: MediaStreamTrack | null): void {
    const old = this.audio;
    this.audio = track;
    this.onTrack('audio', track);
    if (old && old !== track) old.stop();
  }
}
