// One pino logger per process. JSON lines for machines, pretty lines on a terminal.
// Secrets never reach a log line: the gateway does not log headers or bodies, and the
// redact list is a second fence in case someone adds a field later.
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/values.ts';

export type { Logger };

/** A logger made on first use: a per-request pino child costs microseconds, and most
 * requests never log anything but their access line. */
export type LogSource = () => Logger;

export const REDACTED_PATHS = [
  'authorization',
  'apiKey',
  'api_key',
  'password',
  'headers.authorization',
  'headers["proxy-authorization"]',
  '*.authorization',
  '*.apiKey',
  '*.api_key',
  '*.password',
  '*.databaseUrl',
];

const LOG_BATCH_BYTES = 8 * 1024;
const LOG_FLUSH_MS = 200;
/** Log bytes held while stdout does not take them; more are dropped. */
const MAX_PENDING_LOG_BYTES = 16 * 1024 * 1024;

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Defaults to stdout; pretty printing is used when stdout is a terminal. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination !== undefined) return pino(base, options.destination);
  if (process.stdout.isTTY) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' },
      },
    });
  }
  // Asynchronous writes: the access log must not block the event loop on every request.
  // pino flushes what is pending when the process exits. A reader that stops reading (a
  // stuck log collector) must not grow the gateway's memory without end: past
  // maxLength, lines are dropped.
  const destination = pino.destination({
    dest: 1,
    sync: false,
    // Lines leave in batches: one write per line is a thread-pool round trip, and cost
    // ~25 µs of CPU per request under load (bench/README.md).
    minLength: LOG_BATCH_BYTES,
    maxLength: MAX_PENDING_LOG_BYTES,
  });
  flushWhileQuiet(destination);
  return pino(base, destination);
}

/**
 * A quiet gateway's lines still leave within LOG_FLUSH_MS. Not sonic-boom's own
 * periodicFlush: it writes (an empty string, through the thread pool) every period even
 * when nothing was logged, waking an idle gateway five times a second.
 */
function flushWhileQuiet(destination: ReturnType<typeof pino.destination>): void {
  let written = false;
  const write = destination.write.bind(destination);
  destination.write = (line: string): boolean => {
    written = true;
    return write(line);
  };
  const timer = setInterval(() => {
    if (!written) return;
    written = false;
    try {
      destination.flush();
    } catch {
      // Destroyed at exit: pino has flushed what it could.
    }
  }, LOG_FLUSH_MS);
  timer.unref();
}

export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // A logger without a flushable destination (tests) has nothing to flush.
  }
}
