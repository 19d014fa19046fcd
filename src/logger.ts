import { pino, type Logger } from 'pino';

/** JSON logs on stdout. Callers bind ids (captureId, jobId, requestId); never log keys or embeddings. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', '*.key', '*.embedding'], censor: '[redacted]' },
  });
}

export type { Logger };
