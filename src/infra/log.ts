/** Structured logs (pino). Loggers are named per subsystem; they carry ids, codes and hashes, never content or keys. */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export function createLogger(options: { name: string; level: string; fd?: 1 | 2 }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      // Defence in depth: should a field carrying key material or content be logged by mistake, it is masked.
      redact: { paths: ['jws', '*.jws', 'd', '*.d', 'content', '*.content', 'password', '*.password'], censor: '[redacted]' },
    },
    pino.destination({ dest: options.fd ?? 1, sync: true }),
  );
}
