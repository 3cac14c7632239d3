// The media node's process: configuration from the environment, the node started on its ports,
// SIGHUP reloads the RTMPS certificate, SIGINT/SIGTERM shut it down cleanly (publishers dropped,
// ffmpeg stopped, pending pushes flushed, origin told) and exit. The node itself: media-node.ts.
import { configProblem, mediaNodeConfigFromEnv } from './config.ts';
import { createLogger } from './log.ts';
import { startMediaNode } from './media-node.ts';

const config = mediaNodeConfigFromEnv(process.env);
const log = createLogger({ service: 'transcoder', nodeId: config.nodeId });
const problem = configProblem(config);
if (problem) {
  log.error(problem);
  process.exit(1);
}
const node = await startMediaNode(config, log);

async function shutdown(signal: string): Promise<void> {
  const force = setTimeout(() => {
    log.warn('shutdown took too long, exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  await node.stop(signal);
  process.exit(0);
}
process.on('SIGHUP', () => {
  try {
    node.reloadCertificate();
  } catch (err) {
    log.error('rtmps certificate not reloaded; the previous one stays', { certFile: config.rtmpsCertFile, error: String(err) });
  }
});
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
