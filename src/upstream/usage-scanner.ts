// Finds the token usage and the model in a response body as it passes, without parsing
// the body: the Responses API's `"usage":{"input_tokens":...}`, Chat Completions' and
// Completions' `"usage":{"prompt_tokens":...}` (the last chunk of a stream, or every chunk
// with vLLM's continuous usage stats: the last one wins), Embeddings' likewise.
//
// Every answer puts its usage at or near its end (the last event of a stream, the last
// fields of a JSON object), so nothing is searched while the body passes: the last chunks
// are kept by reference, and searched backwards once, when the usage is asked for. The
// model is the first `"model":"` of the body, found within its first chunks.
//
// JSON escapes every quote inside a string, so `"usage":{` can only be a key; a nested
// object with a key named usage would be taken too, and no vLLM answer has one.
import type { TokenUsage } from '../observability/metrics.ts';

const USAGE_KEY = Buffer.from('"usage":{');
const MODEL_KEY = Buffer.from('"model":"');
/** How much of the body's end is kept to find the usage in. */
const TAIL_BYTES = 16 * 1024;
/** How much of the body's start is searched for the model. */
const MODEL_SEARCH_BYTES = 64 * 1024;
/** A usage object larger than this is not one (vLLM's are ~200 bytes). */
const MAX_USAGE_BYTES = 4096;
const MAX_MODEL_BYTES = 256;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export class UsageScanner {
  /** The last chunks, holding at least TAIL_BYTES when the body is that long. */
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #usage: TokenUsage | undefined;
  #usageSearched = false;
  #model: string | undefined;
  #modelSearchedBytes = 0;
  /** The model name being read, when it spans chunks. */
  #modelParts: Buffer[] | undefined;
  #modelEscaped = false;
  /** The end of the body before this chunk, for a model key cut between the two. */
  #previous: Buffer | undefined;

  push(chunk: Buffer): void {
    if (this.#model === undefined && this.#modelSearchedBytes < MODEL_SEARCH_BYTES) this.#findModel(chunk);
    const tail = this.#tail;
    tail.push(chunk);
    this.#tailBytes += chunk.length;
    while (tail.length > 1 && this.#tailBytes - (tail[0] as Buffer).length >= TAIL_BYTES) {
      this.#tailBytes -= (tail.shift() as Buffer).length;
    }
    this.#usageSearched = false;
  }

  /** The body's usage and model as its reader found them (then nothing is pushed). */
  report(reported: { readonly usage: unknown; readonly model: unknown } | undefined): void {
    this.#usage = normalizeUsage(reported?.usage);
    this.#usageSearched = true;
    if (this.#model === undefined && typeof reported?.model === 'string') this.#model = reported.model;
  }

  /** The last usage of the body so far, normalized; undefined when it holds none. */
  get usage(): TokenUsage | undefined {
    if (!this.#usageSearched) {
      this.#usageSearched = true;
      this.#usage = this.#findUsage();
    }
    const banked = this.#banked;
    const usage = this.#usage;
    if (banked === undefined || usage === undefined) return usage ?? banked;
    return {
      input: banked.input + usage.input,
      output: banked.output + usage.output,
      cached: banked.cached + usage.cached,
      reasoning: banked.reasoning + usage.reasoning,
    };
  }

  /** The usage of the bodies before this one (a tool loop makes several vLLM calls). */
  #banked: TokenUsage | undefined;

  /** The body ended and another of the same response follows: its usage is kept and
   * added to what the next ones report. */
  nextBody(): void {
    this.#banked = this.usage;
    this.#usage = undefined;
    this.#tail = [];
    this.#tailBytes = 0;
    this.#previous = undefined;
    this.#usageSearched = false;
  }

  /** The first model name of the body. */
  get model(): string | undefined {
    return this.#model;
  }

  /** The last complete usage object in the kept tail: in the last chunk alone first (where
   * streams have it), else in the whole tail (one copy of at most TAIL_BYTES and a chunk). */
  #findUsage(): TokenUsage | undefined {
    const tail = this.#tail;
    const last = tail.at(-1);
    if (last === undefined) return undefined;
    const inLast = lastUsageIn(last);
    if (inLast !== undefined || tail.length === 1) return inLast;
    return lastUsageIn(Buffer.concat(tail));
  }

  #findModel(chunk: Buffer): void {
    this.#modelSearchedBytes += chunk.length;
    let from = 0;
    if (this.#modelParts !== undefined) from = this.#continueModel(chunk, 0);
    else if (this.#previous !== undefined) {
      const end = keyEndAcross(this.#previous, chunk, MODEL_KEY);
      if (end !== -1) from = this.#continueModel(chunk, end, true);
    }
    if (this.#model === undefined && this.#modelParts === undefined && from < chunk.length) {
      const at = chunk.indexOf(MODEL_KEY, from);
      if (at !== -1) this.#continueModel(chunk, at + MODEL_KEY.length, true);
    }
    if (this.#model !== undefined || this.#modelParts !== undefined) this.#previous = undefined;
    else if (chunk.length >= MODEL_KEY.length - 1) this.#previous = chunk;
    else {
      // Chunks shorter than the key: keep the last bytes of several.
      const joined = this.#previous === undefined ? chunk : Buffer.concat([this.#previous, chunk]);
      this.#previous = joined.subarray(Math.max(0, joined.length - (MODEL_KEY.length - 1)));
    }
  }

  /** Reads the model name from `at` (just after its opening quote); returns where it stopped. */
  #continueModel(chunk: Buffer, at: number, starting = false): number {
    if (starting) {
      this.#modelParts = [];
      this.#modelEscaped = false;
    }
    const parts = this.#modelParts as Buffer[];
    let end = at;
    for (; end < chunk.length; end++) {
      const byte = chunk[end];
      if (this.#modelEscaped) this.#modelEscaped = false;
      else if (byte === BACKSLASH) this.#modelEscaped = true;
      else if (byte === QUOTE) break;
    }
    parts.push(chunk.subarray(at, end));
    const bytes = parts.reduce((sum, part) => sum + part.length, 0);
    if (end === chunk.length) {
      if (bytes > MAX_MODEL_BYTES) this.#modelParts = undefined;
      return end;
    }
    this.#modelParts = undefined;
    if (bytes <= MAX_MODEL_BYTES) {
      try {
        this.#model = JSON.parse(`"${Buffer.concat(parts).toString('utf8')}"`) as string;
      } catch {
        // Not a name after all; the next "model" may be.
      }
    }
    return end + 1;
  }
}

/** The last complete usage object in `buffer`, searched backwards. */
function lastUsageIn(buffer: Buffer): TokenUsage | undefined {
  let from = buffer.length;
  while (from > 0) {
    const at = buffer.lastIndexOf(USAGE_KEY, from - 1);
    if (at === -1) return undefined;
    const usage = readUsageObject(buffer, at + USAGE_KEY.length - 1);
    if (usage !== undefined) return usage;
    from = at;
  }
  return undefined;
}

/** The usage object whose `{` is at `start`, if it is complete and small, normalized. */
function readUsageObject(buffer: Buffer, start: number): TokenUsage | undefined {
  const limit = Math.min(buffer.length, start + MAX_USAGE_BYTES);
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < limit; i++) {
    const byte = buffer[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (byte === BACKSLASH) escaped = true;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE) depth += 1;
    else if (byte === CLOSE_BRACE) {
      depth -= 1;
      if (depth === 0) {
        try {
          return normalizeUsage(JSON.parse(buffer.toString('utf8', start, i + 1)));
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

/**
 * Where `key` ends in `chunk` when it starts in `before` and ends in `chunk` (neither
 * holds it whole), or -1. At most key.length - 1 candidate cuts, each of which almost
 * always fails at its first byte.
 */
function keyEndAcross(before: Buffer, chunk: Buffer, key: Buffer): number {
  for (let inBefore = Math.min(key.length - 1, before.length); inBefore >= 1; inBefore--) {
    const inChunk = key.length - inBefore;
    if (inChunk > chunk.length) break;
    let matches = true;
    for (let i = 0; i < inBefore && matches; i++) matches = before[before.length - inBefore + i] === key[i];
    for (let i = 0; i < inChunk && matches; i++) matches = chunk[i] === key[inBefore + i];
    if (matches) return inChunk;
  }
  return -1;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

function detail(details: unknown, field: string): number {
  return typeof details === 'object' && details !== null ? count((details as Record<string, unknown>)[field]) : 0;
}

/** Either API's usage object as input/output/cached/reasoning counts. */
export function normalizeUsage(raw: unknown): TokenUsage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const usage = raw as Record<string, unknown>;
  if ('input_tokens' in usage || 'output_tokens' in usage) {
    return {
      input: count(usage['input_tokens']),
      output: count(usage['output_tokens']),
      cached: detail(usage['input_tokens_details'], 'cached_tokens'),
      reasoning: detail(usage['output_tokens_details'], 'reasoning_tokens'),
    };
  }
  if ('prompt_tokens' in usage) {
    return {
      input: count(usage['prompt_tokens']),
      output: count(usage['completion_tokens']),
      cached: detail(usage['prompt_tokens_details'], 'cached_tokens'),
      reasoning: detail(usage['completion_tokens_details'], 'reasoning_tokens'),
    };
  }
  return undefined;
}
