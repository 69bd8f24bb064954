import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Request logs carry method, path and status only (never query strings,
 * headers or bodies, where codes, tokens and cookies travel); the redaction list is a second net.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wiki-matrix-sso' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          '*.authorization',
          '*.cookie',
          '*.password',
          '*.client_secret',
          '*.access_token',
          '*.refresh_token',
          '*.id_token',
          '*.code',
          '*.token',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
