// In-process metrics of the transcoder, served as JSON on /metrics: sessions, pushes, bytes and
// the push latency (object ready at the transcoder → acknowledged by the origin).

export class Metrics {
  sessionsStarted = 0;
  sessionsRefused = 0;
  pushes = 0;
  pushedBytes = 0;
  private readonly partLatencies: number[] = [];

  pushAcked(kind: 'part' | 'other', ms: number, bytes: number): void {
    this.pushes++;
    this.pushedBytes += bytes;
    if (kind === 'part') {
      this.partLatencies.push(ms);
      // A bounded ring of recent samples keeps memory flat on long streams.
      if (this.partLatencies.length > 2048) this.partLatencies.splice(0, 1024);
    }
  }

  snapshot(): Record<string, unknown> {
    const sorted = [...this.partLatencies].sort((a, b) => a - b);
    const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);
    return {
      sessionsStarted: this.sessionsStarted,
      sessionsRefused: this.sessionsRefused,
      pushes: this.pushes,
      pushedBytes: this.pushedBytes,
      partPushMs: { p50: q(0.5), p99: q(0.99), samples: sorted.length },
    };
  }
}
