// The simulated vLLM's prefix cache: what a real vLLM keeps of the requests it served (the
// KV cache of their tokens), so that a request whose input begins with a conversation it
// already saw computes only what is new. Counted as vLLM counts it, in tokens queried and
// tokens found (vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total on
// /metrics), from which a benchmark reads each replica's hit rate.
//
// Items are compared by what the model reads of them (role and text, call names and
// arguments, outputs), not by ids; a token is about four characters, as in the simulator's
// usage. The cache forgets everything past MAX_ENTRIES (a bounded memory).
import { createHash } from 'node:crypto';
import type { PlannedItem } from './wire.ts';

type JsonObject = Record<string, unknown>;

const MAX_ENTRIES = 200_000;

/** What the model reads of one input item. */
function itemText(item: unknown): string {
  if (typeof item === 'string') return `user:${item}`;
  if (typeof item !== 'object' || item === null) return String(item);
  const object = item as JsonObject;
  const type = object['type'] ?? 'message';
  if (type === 'message') return `${String(object['role'])}:${contentText(object['content'])}`;
  if (type === 'function_call') return `call:${String(object['name'])}:${String(object['arguments'])}`;
  if (type === 'function_call_output') return `output:${typeof object['output'] === 'string' ? object['output'] : JSON.stringify(object['output'])}`;
  if (type === 'reasoning') return `reasoning:${contentText(object['content'])}`;
  const { id: _id, ...rest } = object;
  return JSON.stringify(rest);
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part === 'object' && part !== null && typeof (part as JsonObject)['text'] === 'string' ? (part as JsonObject)['text'] : '')).join('');
}

/** What the model reads of one item it generated, as it comes back in the next request. */
function answerText(item: PlannedItem): string {
  if (item.type === 'message') return `assistant:${item.deltas.join('')}`;
  if (item.type === 'reasoning') return `reasoning:${item.deltas.join('')}`;
  return `call:${item.name}:${item.argumentDeltas.join('')}`;
}

const tokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4));

export class PrefixCache {
  readonly #seen = new Set<string>();
  /** Input tokens looked up, and those found cached (vLLM's two counters). */
  queries = 0;
  hits = 0;

  /** Looks the request's input up, then keeps it with the answer appended; returns the
   * input tokens not found (what vLLM would have to compute). */
  serve(input: unknown, answer: readonly PlannedItem[]): number {
    const texts = (typeof input === 'string' ? [input] : Array.isArray(input) ? input : []).map(itemText);
    let chain = '';
    let cachedTokens = 0;
    let totalTokens = 0;
    let stillCached = true;
    const keys: string[] = [];
    for (const text of texts) {
      chain = createHash('sha1').update(chain).update('\u0001').update(text).digest('hex');
      keys.push(chain);
      const size = tokens(text);
      totalTokens += size;
      if (stillCached && this.#seen.has(chain)) cachedTokens += size;
      else stillCached = false;
    }
    this.queries += totalTokens;
    this.hits += cachedTokens;
    for (const item of answer) {
      chain = createHash('sha1').update(chain).update('\u0001').update(answerText(item)).digest('hex');
      keys.push(chain);
    }
    if (this.#seen.size + keys.length > MAX_ENTRIES) this.#seen.clear();
    for (const key of keys) this.#seen.add(key);
    return totalTokens - cachedTokens;
  }

  /** The counters in Prometheus' text format, named as vLLM names them. */
  metrics(model: string): string {
    const labels = `{engine="0",model_name="${model}"}`;
    return [
      '# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.',
      '# TYPE vllm:prefix_cache_queries_total counter',
      `vllm:prefix_cache_queries_total${labels} ${this.queries}`,
      '# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.',
      '# TYPE vllm:prefix_cache_hits_total counter',
      `vllm:prefix_cache_hits_total${labels} ${this.hits}`,
      '',
    ].join('\n');
  }
}
