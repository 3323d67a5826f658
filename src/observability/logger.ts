// One pino logger per process. JSON lines for machines, one readable line per event on a
// terminal (pretty-log.ts).
// Secrets never reach a log line: the gateway does not log headers or bodies, and the
// redact list is a second fence in case someone adds a field later.
import { pino, type DestinationStream, type Logger } from 'pino';
import sonicBoomModule, { type SonicBoom, type SonicBoomOpts } from 'sonic-boom';
import type { LogFormat, LogLevel } from '../config/values.ts';
import { PrettyLogDestination, terminalWantsColour } from './pretty-log.ts';

export type { Logger };

// sonic-boom is CommonJS (module.exports is the class) while its types declare a named
// export: the default import is the class at run time.
const SonicBoomClass = sonicBoomModule as unknown as typeof SonicBoom;

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
  /** auto: pretty when stdout is a terminal, JSON otherwise. */
  readonly format?: LogFormat;
  /** Defaults to stdout. */
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
  const format = options.format ?? 'auto';
  if (format === 'pretty' || (format === 'auto' && process.stdout.isTTY)) {
    // A terminal shows each line as it comes; a pipe gets the batched writer.
    const out = process.stdout.isTTY ? process.stdout : stdoutDestination();
    return pino(base, new PrettyLogDestination(out, { colour: terminalWantsColour(process.stdout) }));
  }
  // Asynchronous writes: the access log must not block the event loop on every request.
  return pino(base, stdoutDestination());
}

let sharedStdout: StdoutLogDestination | undefined;

/** One per process: loggers made for tests or tools share it, and its exit hook. */
function stdoutDestination(): StdoutLogDestination {
  sharedStdout ??= new StdoutLogDestination();
  return sharedStdout;
}

/**
 * stdout, written asynchronously in batches, never in the way of the gateway.
 * - Lines leave in batches of LOG_BATCH_BYTES: one write per line is a thread-pool round
 *   trip per request (batched: ~30x fewer log syscalls, 2% less CPU; bench/README.md). A quiet
 *   gateway's lines still leave within LOG_FLUSH_MS; an idle one makes no syscalls
 *   (sonic-boom's own periodicFlush writes an empty string every period).
 * - The batch is gathered here, as a list of lines joined once, and handed to sonic-boom
 *   whole: sonic-boom appends each string it is given to the last one pending and first
 *   measures that one's UTF-8 length, which flattens and scans the whole pending batch at
 *   every line (an access line cost 13 µs a request in place; bench/README.md).
 * - A reader that stops reading (a stuck log collector) does not grow memory without
 *   end: past MAX_PENDING_LOG_BYTES, lines are dropped.
 * - A reader that is gone (`gateway | collector`, the collector dead) ends logging, not
 *   the gateway: sonic-boom 5, not pino's sonic-boom 4, whose exit-time flushSync
 *   retried a broken pipe forever and kept a stopped gateway alive.
 */
class StdoutLogDestination implements DestinationStream {
  readonly #boom: SonicBoom;
  /** Lines not yet handed to sonic-boom, and their length in UTF-16 units (a batch's
   * size need not be exact in bytes). */
  #lines: string[] = [];
  #linesLength = 0;
  #written = false;
  #broken = false;

  constructor() {
    const options: SonicBoomOpts & { maxWriteRetries: number } = {
      fd: 1,
      sync: false,
      minLength: LOG_BATCH_BYTES,
      maxLength: MAX_PENDING_LOG_BYTES,
      // A full pipe (EAGAIN) at exit is retried for at most ~2 s, then given up.
      maxWriteRetries: 20,
    };
    this.#boom = new SonicBoomClass(options);
    this.#boom.on('error', () => {
      this.#broken = true;
    });
    setInterval(() => {
      if (!this.#written || this.#broken) return;
      this.#written = false;
      this.#handOver();
      this.#boom.flush();
    }, LOG_FLUSH_MS).unref();
    process.once('exit', () => {
      if (this.#broken) return;
      try {
        this.#handOver();
        this.#boom.flushSync();
      } catch {
        // stdout is gone: nowhere left to say so.
      }
    });
  }

  write(line: string): void {
    if (this.#broken) return;
    this.#written = true;
    this.#lines.push(line);
    this.#linesLength += line.length;
    if (this.#linesLength >= LOG_BATCH_BYTES) this.#handOver();
  }

  /** pino's logger.flush(): what is pending leaves now. */
  flush(done?: (error?: Error) => void): void {
    if (this.#broken) {
      done?.();
      return;
    }
    this.#handOver();
    this.#boom.flush(done);
  }

  /** The lines gathered, to sonic-boom as one string. */
  #handOver(): void {
    if (this.#lines.length === 0) return;
    const batch = this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join('');
    this.#lines = [];
    this.#linesLength = 0;
    this.#boom.write(batch);
  }
}

export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // A logger without a flushable destination (tests) has nothing to flush.
  }
}
