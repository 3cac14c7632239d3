// The one error the RTMP ingest layer throws for bad input from a publisher. The connection catches
// it, logs the message and drops only that socket; anything else escaping is a bug in this layer.

export class RtmpProtocolError extends Error {
  override name = 'RtmpProtocolError';
}
