// The RTMP ingest layer's public surface: the server, its session and the types the integrator
// uses. The protocol modules beside it are internal (and tested on their own).
export { RtmpIngestServer } from './server.ts';
export type { RtmpIngestOptions } from './server.ts';
export { RtmpPublishSession, streamKeyPrefix } from './session.ts';
export type { AuthorizeResult, PublishRequest, RtmpEndCode, RtmpSessionEnd, RtmpSessionStats } from './session.ts';
