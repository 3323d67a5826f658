// Log lines for a person at a terminal: one line per event, the way uvicorn and vLLM
// print theirs. pino's JSON line comes in and a line like
//   07:40:01.123 INFO  gateway listening port=8080 upstream=http://127.0.0.1:8000
// goes out; an access record is written directly, without the JSON in between:
//   07:40:02.456 INFO  POST /v1/responses 200 812 ms streamed req=5f0c…
// Colour only on a terminal, and never with NO_COLOR set (no-color.org).
import type { AccessRecord } from './access-record.ts';

interface Output {
  write(text: string): unknown;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** pino's own fields, said by the line's layout rather than as key=value. */
const LAYOUT_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

export function terminalWantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] ?? '') === '' && env['TERM'] !== 'dumb';
}

export class PrettyLogDestination {
  readonly #out: Output;
  readonly #colour: boolean;

  constructor(out: Output, options: { colour: boolean }) {
    this.#out = out;
    this.#colour = options.colour;
  }

  /** pino's destination interface: one JSON line. */
  write(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.#out.write(line);
      return;
    }
    const level = typeof entry['level'] === 'number' ? entry['level'] : 30;
    let text = `${this.#head(level)} ${typeof entry['msg'] === 'string' ? entry['msg'] : ''}`;
    let stack = '';
    for (const [key, value] of Object.entries(entry)) {
      if (LAYOUT_FIELDS.has(key) || value === undefined) continue;
      if (key === 'err' && typeof value === 'object' && value !== null) {
        const error = value as { message?: unknown; stack?: unknown };
        text += ` err=${quoted(typeof error.message === 'string' ? error.message : '')}`;
        // Only at debug does a warn line carry its error whole: the stack then follows.
        if (typeof error.stack === 'string') stack = `\n${indent(error.stack)}`;
        continue;
      }
      text += ` ${key}=${formatValue(value)}`;
    }
    this.#out.write(`${text}${stack}\n`);
  }

  /** One request, as AccessLog hands it over. */
  writeAccess(record: AccessRecord, level: number): void {
    let text = `${this.#head(level)} ${record.method} ${record.path} ${this.#status(record.status)} ${formatDuration(record.durationMs)}`;
    if (record.streamed) text += ' streamed';
    if (record.errorCode !== undefined) text += ` error=${record.errorCode}`;
    this.#out.write(`${text} req=${record.requestId}\n`);
  }

  #head(level: number): string {
    const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
    const time = clockTime(new Date());
    return this.#colour ? `\x1b[2m${time}\x1b[0m \x1b[${LEVEL_COLOURS[level] ?? '0'}m${name}\x1b[0m` : `${time} ${name}`;
  }

  #status(status: number): string {
    if (!this.#colour) return String(status);
    const colour = status >= 500 ? '31' : status >= 400 ? '33' : '32';
    return `\x1b[${colour}m${status}\x1b[0m`;
  }
}

function clockTime(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

export function formatDuration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A value as the shell would read it back: bare when it is one word, quoted otherwise. */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return quoted(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

function quoted(text: string): string {
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
