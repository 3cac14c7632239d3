// In-page probes of the player benchmark (injected by bench/player/run.ts; plain browser JS).
//   __probe.g2g(video, pdtAt): on every presented frame (requestVideoFrameCallback) reads the
//     capture-time barcode out of the frame (bench/player/clock-publisher.ts) and records the
//     wall clock at which the frame is shown minus its capture time; also minus its
//     program-date-time when `pdtAt(mediaTime)` is given; counts the stalls (`waiting`) meanwhile.
//   __probe.track(pdtNow): every 20 ms, the wall clock and the program-date-time on screen (for
//     the alignment of two pages).
(() => {
  const wall = (t) => performance.timeOrigin + t;
  const probe = {
    frames: [],
    samples: [],
    unreadable: 0,
    g2g(video, pdtAt, layout) {
      const { x, y, cell, height, bits, width, heightPx } = layout;
      const canvas = document.createElement('canvas');
      canvas.width = 32 * cell;
      canvas.height = 4;
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const onFrame = (_now, m) => {
        const sx = video.videoWidth / width;
        const sy = video.videoHeight / heightPx;
        // One thin band through the middle of the barcode, scaled back to source pixels.
        ctx.drawImage(video, x * sx, (y + height / 2 - 2) * sy, 32 * cell * sx, 4 * sy, 0, 0, 32 * cell, 4);
        const d = ctx.getImageData(0, 0, 32 * cell, 4).data;
        const luma = (k) => {
          const i = (2 * 32 * cell + k * cell + cell / 2) * 4;
          return (d[i] + d[i + 1] + d[i + 2]) / 3;
        };
        const shown = wall(m.expectedDisplayTime);
        if (luma(0) > 150 && luma(1) < 100) {
          let msOfDay = 0;
          for (let k = 0; k < bits; k++) if (luma(k + 2) > 128) msOfDay += 2 ** k;
          let captured = Math.floor(shown / 86_400_000) * 86_400_000 + msOfDay;
          if (captured > shown + 43_200_000) captured -= 86_400_000; // shown just after UTC midnight
          const pdt = pdtAt ? pdtAt(m.mediaTime) : null;
          probe.frames.push({ shown, glass: shown - captured, pdt: pdt === null ? null : shown - pdt, height: video.videoHeight });
        } else {
          probe.unreadable++;
        }
        if (probe.g2gOn) video.requestVideoFrameCallback(onFrame);
      };
      probe.g2gOn = true;
      probe.stalls = 0;
      video.addEventListener('waiting', () => {
        if (probe.g2gOn) probe.stalls++;
      });
      video.requestVideoFrameCallback(onFrame);
    },
    stopG2G() {
      probe.g2gOn = false;
      return { frames: probe.frames.splice(0), unreadable: probe.unreadable, stalls: probe.stalls };
    },
    track(pdtNow) {
      probe.samples = [];
      probe.timer = setInterval(() => {
        const pdt = pdtNow();
        if (pdt !== null) probe.samples.push([wall(performance.now()), pdt]);
      }, 20);
    },
    stopTrack() {
      clearInterval(probe.timer);
      return probe.samples.splice(0);
    },
  };
  window.__probe = probe;
})();
