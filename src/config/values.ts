// String-to-value schemas for each flag kind. They take what the user typed (flag or
// environment) and either return the typed value or fail with a sentence that ends up
// after the flag's name in a one-line startup error.
import { z } from 'zod';
import { parseDbUrl, redactDbUrl } from './db-url.ts';
import type { FlagKind } from './flags.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS_BYTES: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

function refineString<T>(parse: (raw: string) => T | string) {
  // `parse` returns the value, or a string describing what is wrong with the input.
  // Values of type string are wrapped by the caller so the two never mix up.
  return z.string().transform((raw, ctx) => {
    const result = parse(raw.trim());
    if (typeof result === 'string') {
      ctx.addIssue({ code: 'custom', message: result });
      return z.NEVER;
    }
    return result;
  });
}

/** Milliseconds from "2", "0.5", "500ms", "2s", "5m", "1h" or "30d" (a bare number is seconds). */
export function parseDurationMs(raw: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?$/i.exec(raw.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = amount * (DURATION_UNITS_MS[unit] ?? 1000);
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Bytes from "1048576", "512KiB", "10MiB", "10mb", "1g". */
export function parseSizeBytes(raw: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i.exec(raw.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 'b').toLowerCase();
  const multiplier = SIZE_UNITS_BYTES[unit];
  if (multiplier === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * multiplier);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export interface ParsedUrl {
  /** scheme://host:port */
  readonly origin: string;
  /** Path prefix before /v1, without a trailing slash ('' for none). */
  readonly basePath: string;
}

/** vLLM's base URL: the /v1 suffix and trailing slashes are optional and mean the same. */
export function parseApiBase(raw: string): ParsedUrl | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `"${raw}" is not a URL (expected e.g. http://127.0.0.1:8000)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `"${raw}" must use http:// or https://`;
  }
  if (url.search || url.hash) return `"${raw}" must not have a query string or fragment`;
  if (url.username || url.password) {
    return 'credentials in the URL are not supported; use --openai-api-key';
  }
  const basePath = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return { origin: url.origin, basePath };
}

/** One or more base URLs, comma-separated (a repeated flag is joined with commas): the
 * replicas of one model. The same server twice is refused: it would be weighted double. */
function parseApiBases(raw: string): { value: readonly ParsedUrl[] } | string {
  const parts = raw.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  if (parts.length === 0) return 'must name at least one URL';
  const bases: ParsedUrl[] = [];
  for (const part of parts) {
    const base = parseApiBase(part);
    if (typeof base === 'string') return base;
    if (bases.some((seen) => seen.origin === base.origin && seen.basePath === base.basePath)) return `"${part}" is named twice`;
    bases.push(base);
  }
  return { value: bases };
}

/** Bytes, as "512KiB" or "10MiB"; zero only where it means off. */
function sizeKind(zeroAllowed: boolean) {
  return refineString((raw) => {
    const bytes = parseSizeBytes(raw);
    if (bytes === undefined) return `"${raw}" is not a size (bytes, or with KiB/MiB/KB/MB)${zeroAllowed ? ', nor 0' : ''}`;
    return bytes > 0 || zeroAllowed ? { value: bytes } : `"${raw}" must be greater than zero`;
  }).transform((wrapped) => wrapped.value);
}

const kindSchemas = {
  urls: refineString((raw) => parseApiBases(raw)).transform((wrapped) => wrapped.value),
  string: refineString((raw) => (raw.length === 0 ? 'must not be empty' : { value: raw })).transform(
    (wrapped) => wrapped.value,
  ),
  // Trimmed; an empty key means "no key".
  secret: z.string().transform((raw) => (raw.trim() === '' ? undefined : raw.trim())),
  port: refineString((raw) => {
    const port = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    return Number.isInteger(port) && port >= 0 && port <= 65535
      ? { value: port }
      : `"${raw}" is not a port number (0-65535)`;
  }).transform((wrapped) => wrapped.value),
  'positive-int': refineString((raw) => {
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    return Number.isSafeInteger(n) && n >= 1 ? { value: n } : `"${raw}" is not a whole number >= 1`;
  }).transform((wrapped) => wrapped.value),
  duration: refineString((raw) => {
    const ms = parseDurationMs(raw);
    if (ms === undefined) return `"${raw}" is not a duration (seconds, or with ms/s/m/h/d)`;
    return ms > 0 ? { value: ms } : `"${raw}" must be greater than zero`;
  }).transform((wrapped) => wrapped.value),
  // A retention: a duration, or 0 / forever / never / off to keep for ever (null).
  retention: refineString((raw) => {
    if (['0', 'forever', 'never', 'off', 'none'].includes(raw.toLowerCase())) return { value: null };
    const ms = parseDurationMs(raw);
    if (ms === undefined) return `"${raw}" is not a duration (seconds, or with ms/s/m/h/d), nor 0 or forever`;
    return { value: ms };
  }).transform((wrapped) => wrapped.value),
  size: sizeKind(false),
  // A budget: 0 turns the thing it sizes off.
  'size-or-zero': sizeKind(true),
  list: z.string().transform((raw) =>
    raw
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  ),
  'log-level': refineString((raw) => {
    const level = raw.toLowerCase();
    return (LOG_LEVELS as readonly string[]).includes(level)
      ? { value: level as LogLevel }
      : `"${raw}" is not one of ${LOG_LEVELS.join(', ')}`;
  }).transform((wrapped) => wrapped.value),
  'log-format': refineString((raw) => {
    const format = raw.toLowerCase();
    return (LOG_FORMATS as readonly string[]).includes(format)
      ? { value: format as LogFormat }
      : `"${raw}" is not one of ${LOG_FORMATS.join(', ')}`;
  }).transform((wrapped) => wrapped.value),
  'db-url': refineString((raw) => {
    const location = parseDbUrl(raw);
    return typeof location === 'string' ? `"${redactDbUrl(raw)}" ${location}` : location;
  }),
  boolean: refineString((raw) => {
    const value = raw.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(value)) return { value: true };
    if (['0', 'false', 'no', 'off', ''].includes(value)) return { value: false };
    return `"${raw}" is not a boolean (true/false)`;
  }).transform((wrapped) => wrapped.value),
} satisfies Record<FlagKind, z.ZodType>;

export type KindValue<K extends FlagKind> = z.output<(typeof kindSchemas)[K]>;

/** Parse one raw value of the given kind; returns the value or a description of the problem. */
export function parseKind<K extends FlagKind>(
  kind: K,
  raw: string,
): { ok: true; value: KindValue<K> } | { ok: false; problem: string } {
  const result = kindSchemas[kind].safeParse(raw);
  if (result.success) return { ok: true, value: result.data as KindValue<K> };
  return { ok: false, problem: result.error.issues[0]?.message ?? 'is invalid' };
}
