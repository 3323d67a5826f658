// A non-streamed /v1/responses answer from vLLM, rewritten into OpenAI's shape under the
// gateway's ids, stored (when asked) before it is sent.
import { GatewayError } from '../errors.ts';
import type { BufferedReply, BufferedTransform, ReportedUsage, UpstreamHead } from '../upstream/relay.ts';
import { itemIdPrefix, newId } from './ids.ts';
import { normalizeOutputItem, type Json } from './items.ts';
import { normalizeResponse, type ResponseFacts } from './response-object.ts';
import { restoredCall } from './client-tools.ts';
import type { ToolRoute } from './output-items.ts';
import type { StreamHooks } from './stream-normalizer.ts';

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class JsonNormalizer implements BufferedTransform {
  readonly kind = 'buffered';
  readonly #facts: ResponseFacts;
  readonly #hooks: StreamHooks;
  readonly #route: ((functionName: string) => ToolRoute | undefined) | undefined;
  /** What vLLM's answer reported of its usage, once finish() has read it. */
  #usage: ReportedUsage | undefined;

  constructor(facts: ResponseFacts, hooks: StreamHooks, route?: (functionName: string) => ToolRoute | undefined) {
    this.#facts = facts;
    this.#hooks = hooks;
    this.#route = route;
  }

  /** Synchronous unless the response is stored (the relay then waits for the store). */
  finish(body: Buffer, head: UpstreamHead, filteredHeaders: readonly string[]): BufferedReply | Promise<BufferedReply> {
    let upstream: unknown;
    try {
      upstream = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new GatewayError('upstream_invalid_response', 'The model server answered with something that is not JSON.', { cause: error });
    }
    if (!isObject(upstream)) {
      throw new GatewayError('upstream_invalid_response', 'The model server answered with JSON that is not a response object.');
    }
    this.#usage = { usage: upstream['usage'], model: upstream['model'] };
    const status = upstream['status'] === 'incomplete' ? 'incomplete' : 'completed';
    const output = (Array.isArray(upstream['output']) ? upstream['output'] : [])
      .filter(isObject)
      .map((raw) => {
        const type = typeof raw['type'] === 'string' ? raw['type'] : 'message';
        const route = type === 'function_call' && typeof raw['name'] === 'string' ? this.#route?.(raw['name']) : undefined;
        const item = normalizeOutputItem(raw, newId(itemIdPrefix(route?.kind ?? type)), status, this.#facts.keepRawFields);
        if (type === 'reasoning' && this.#facts.sealReasoning !== undefined) item['encrypted_content'] = this.#facts.sealReasoning(item);
        return route === undefined ? item : restoredCall(item, route);
      });
    const leading = this.#facts.leadingItems;
    const response = normalizeResponse(upstream, this.#facts, { output: leading === undefined || leading.length === 0 ? output : [...leading, ...output] });
    const json = JSON.stringify(response);
    const stored = this.#hooks.finish(response, json);
    const headers: string[] = [];
    for (let i = 0; i < filteredHeaders.length; i += 2) {
      if ((filteredHeaders[i] as string).toLowerCase() !== 'content-type') headers.push(filteredHeaders[i] as string, filteredHeaders[i + 1] as string);
    }
    headers.push('content-type', 'application/json');
    const reply: BufferedReply = { status: head.status, headers, body: json };
    return stored === undefined ? reply : stored.then(() => reply);
  }

  takeUsage(): ReportedUsage | undefined {
    const usage = this.#usage;
    this.#usage = undefined;
    return usage;
  }
}

/** Answers 502 when vLLM's reply cannot be what was asked (a stream that is not one). */
export class InvalidUpstreamReply implements BufferedTransform {
  readonly kind = 'buffered';
  readonly #message: string;

  constructor(message: string) {
    this.#message = message;
  }

  finish(): BufferedReply {
    throw new GatewayError('upstream_invalid_response', this.#message);
  }
}
