// Thumbnails: ffmpeg writes a JPEG of the top rendition every few seconds to one more pipe as
// multipart JPEG (`-f mpjpeg`, each part with a Content-length), and this splits the stream back
// into JPEG files. Pure and incremental: bytes in, whole JPEGs out, whatever the chunking.

const HEADER_END = Buffer.from('\r\n\r\n');
/** A part's header is a few short lines; anything longer is not mpjpeg. */
const MAX_HEADER_BYTES = 1024;

export class MpjpegSplitter {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes of the current JPEG still to come; null while reading a header. */
  private need: number | null = null;

  /** Feeds bytes; returns the JPEGs completed by them, in order. Throws on a malformed stream. */
  push(chunk: Uint8Array): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Buffer[] = [];
    for (;;) {
      if (this.need === null) {
        const end = this.buf.indexOf(HEADER_END);
        if (end < 0) {
          if (this.buf.length > MAX_HEADER_BYTES) throw new Error('mpjpeg: no part header');
          return out;
        }
        const header = this.buf.subarray(0, end).toString('latin1');
        const m = /content-length:\s*(\d+)/i.exec(header);
        if (!m) throw new Error('mpjpeg: a part without Content-length');
        this.need = Number(m[1]);
        this.buf = this.buf.subarray(end + HEADER_END.length);
      }
      if (this.buf.length < this.need) return out;
      out.push(Buffer.from(this.buf.subarray(0, this.need)));
      // The part ends with CRLF before the next boundary line; the next header search skips it.
      this.buf = this.buf.subarray(this.need);
      this.need = null;
      while (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) this.buf = this.buf.subarray(2);
    }
  }
}
