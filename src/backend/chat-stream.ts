// A Chat Completions stream (`data: {chunk}` lines, then `data: [DONE]`), rewritten as
// the Responses event stream vLLM would have sent for the same answer: response.created,
// each output item announced, its part announced, its deltas, its done events, and the
// terminal event with the whole response and its usage. The gateway's stream normalizer
// then treats it as any vLLM stream (ids, sequence numbers, storage).
//
// What servers differ in, and this reads: the reasoning field's name (reasoning,
// reasoning_content); tool calls streamed in pieces (vLLM, llama.cpp, SGLang: the name
// first, then the arguments) or whole in one chunk (Ollama), with or without `index`;
// the usage on the finishing chunk (llama.cpp) or on a last chunk with no choices
// (OpenAI, vLLM, Ollama, SGLang); an error sent as a chunk ({"error": {...}}).
import { StringDecoder } from 'node:string_decoder';
import {
  endingOf,
  functionCallItem,
  isObject,
  logprobsOf,
  messageItem,
  reasoningItem,
  reasoningOf,
  responseObject,
  responsesUsage,
  textPart,
  upstreamId,
  type JsonObject,
} from './chat-output.ts';

interface OpenText {
  readonly kind: 'reasoning' | 'message';
  readonly id: string;
  readonly index: number;
  /** The message's finished parts (output_text, refusal). */
  readonly parts: JsonObject[];
  /** The part being streamed: its type, its text so far, its logprobs. */
  partType: 'output_text' | 'refusal' | 'reasoning_text' | undefined;
  /** `{"item_id":…,"output_index":…,"content_index":…,"delta":` of this part's deltas. */
  deltaPrefix: string;
  text: string;
  logprobs: unknown[] | undefined;
}

interface Call {
  readonly id: string;
  readonly callId: string;
  name: string | undefined;
  args: string;
  /** Its output index, once announced (a call is announced when its name is known). */
  index: number | undefined;
  done: boolean;
}

const DELTA_OF_PART = {
  output_text: 'response.output_text.delta',
  refusal: 'response.refusal.delta',
  reasoning_text: 'response.reasoning_text.delta',
} as const;
const DONE_OF_PART = {
  output_text: 'response.output_text.done',
  refusal: 'response.refusal.done',
  reasoning_text: 'response.reasoning_text.done',
} as const;

export class ChatStreamTranslator {
  readonly #decoder = new StringDecoder('utf8');
  #buffer = '';
  #crlf = false;
  #out = '';
  #seq = 0;
  #created = false;
  #id = upstreamId('resp_');
  #createdAt = Math.floor(Date.now() / 1000);
  #model: unknown = null;
  /** Finished output items, in output order. */
  readonly #items: JsonObject[] = [];
  #nextIndex = 0;
  #open: OpenText | undefined;
  /** Tool calls by the chunk's index (or their order when a server sends none). */
  readonly #calls = new Map<number, Call>();
  #openCall: Call | undefined;
  #finishReason: unknown = undefined;
  #usage: unknown = undefined;
  /** [DONE], an error or the terminal event was handled: what follows is ignored. */
  #over = false;
  /** The response the terminal event carried, once sent. */
  #response: JsonObject | undefined;

  /** Characters held of an event not yet complete (bounded by the caller). */
  get pending(): number {
    return this.#buffer.length;
  }

  /** The final response, once the terminal event was made (not for a failed stream). */
  get response(): JsonObject | undefined {
    return this.#response;
  }

  /** The Responses events for this chunk of the chat stream (possibly none yet). */
  push(chunk: Buffer): string {
    // CRLF framing is looked for only once a CR was seen: most servers frame with LF alone.
    if (!this.#crlf && chunk.includes(13)) this.#crlf = true;
    const text = this.#buffer + this.#decoder.write(chunk);
    let start = 0;
    let boundary = nextBoundary(text, start, this.#crlf);
    while (boundary !== undefined) {
      this.#block(text.slice(start, boundary.at));
      start = boundary.at + boundary.length;
      boundary = nextBoundary(text, start, this.#crlf);
    }
    this.#buffer = start === 0 ? text : text.slice(start);
    return this.#take();
  }

  /** The chat stream ended: the terminal events if it finished; nothing if it was cut
   * short (the normalizer fails a stream that ends without a terminal event). */
  end(): string {
    this.#buffer += this.#decoder.end();
    if (this.#buffer.trim().length > 0) this.#block(this.#buffer);
    this.#buffer = '';
    if (!this.#over && this.#finishReason !== undefined) this.#finish();
    return this.#take();
  }

  #take(): string {
    const out = this.#out;
    this.#out = '';
    return out;
  }

  #block(block: string): void {
    if (this.#over) return;
    let data: string | undefined;
    if (block.startsWith('data: ') && !block.includes('\n')) data = block.slice(6); // nearly every chunk
    else {
      for (const line of block.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue; // comments (": ping"), event names
        const value = line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
        data = data === undefined ? value : `${data}\n${value}`;
      }
    }
    if (data === undefined) return;
    if (data.trim() === '[DONE]') {
      this.#finish();
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      this.#fail('invalid_chunk', 'The model server sent a chat chunk that is not JSON.');
      return;
    }
    if (!isObject(chunk)) return;
    if (chunk['error'] !== undefined || chunk['object'] === 'error') {
      const error = isObject(chunk['error']) ? chunk['error'] : chunk;
      const message = typeof error['message'] === 'string' ? error['message'] : typeof chunk['error'] === 'string' ? chunk['error'] : 'The model server failed.';
      const code = error['code'];
      this.#fail(typeof code === 'string' || typeof code === 'number' ? String(code) : 'upstream_error', message);
      return;
    }
    this.#chunk(chunk);
  }

  #chunk(chunk: JsonObject): void {
    if (!this.#created) {
      if (typeof chunk['id'] === 'string') this.#id = chunk['id'];
      if (typeof chunk['created'] === 'number') this.#createdAt = chunk['created'];
      this.#model = chunk['model'] ?? null;
      this.#created = true;
      this.#event('response.created', { response: this.#responseOf('in_progress', [], null, null) });
    }
    if (chunk['usage'] !== undefined && chunk['usage'] !== null) this.#usage = chunk['usage'];
    const choices = chunk['choices'];
    if (!Array.isArray(choices)) return;
    for (const choice of choices as unknown[]) {
      // One answer per request (n = 1): choices other than the first are not asked for.
      if (!isObject(choice) || (typeof choice['index'] === 'number' && choice['index'] !== 0)) continue;
      const delta = isObject(choice['delta']) ? choice['delta'] : {};
      const reasoning = reasoningOf(delta);
      if (reasoning !== undefined) this.#text('reasoning', 'reasoning_text', reasoning, undefined);
      if (typeof delta['content'] === 'string' && delta['content'].length > 0) this.#text('message', 'output_text', delta['content'], logprobsOf(choice));
      if (typeof delta['refusal'] === 'string' && delta['refusal'].length > 0) this.#text('message', 'refusal', delta['refusal'], undefined);
      if (Array.isArray(delta['tool_calls'])) this.#toolCalls(delta['tool_calls'] as unknown[]);
      if (choice['finish_reason'] !== undefined && choice['finish_reason'] !== null) this.#finishReason = choice['finish_reason'];
    }
  }

  // --- text: reasoning and messages ---------------------------------------------------

  #text(kind: 'reasoning' | 'message', partType: 'output_text' | 'refusal' | 'reasoning_text', text: string, logprobs: unknown[] | undefined): void {
    let open = this.#open;
    if (open === undefined || open.kind !== kind) {
      this.#closeOpen('completed');
      open = this.#openText(kind);
    }
    if (open.partType !== partType) {
      this.#closePart(open);
      this.#openPart(open, partType);
    }
    open.text += text;
    if (logprobs !== undefined) (open.logprobs ??= []).push(...logprobs);
    // Deltas are nearly the whole stream: their fixed part is rendered once per part.
    const type = DELTA_OF_PART[partType];
    const logprobsJson = partType !== 'output_text' ? '' : logprobs === undefined ? ',"logprobs":[]' : `,"logprobs":${JSON.stringify(logprobs)}`;
    this.#out += `event: ${type}\ndata: ${open.deltaPrefix}${JSON.stringify(text)}${logprobsJson},"type":"${type}","sequence_number":${this.#seq++}}\n\n`;
  }

  #openText(kind: 'reasoning' | 'message'): OpenText {
    const id = upstreamId(kind === 'reasoning' ? 'rs_' : 'msg_');
    const open: OpenText = { kind, id, index: this.#nextIndex++, parts: [], partType: undefined, deltaPrefix: '', text: '', logprobs: undefined };
    const item = kind === 'reasoning' ? { id, type: 'reasoning', summary: [], status: 'in_progress' } : messageItem(id, [], 'in_progress');
    this.#event('response.output_item.added', { output_index: open.index, item });
    this.#open = open;
    return open;
  }

  #openPart(open: OpenText, partType: 'output_text' | 'refusal' | 'reasoning_text'): void {
    open.partType = partType;
    open.deltaPrefix = `{"item_id":${JSON.stringify(open.id)},"output_index":${open.index},"content_index":${open.parts.length},"delta":`;
    open.text = '';
    open.logprobs = undefined;
    const part = partType === 'output_text' ? textPart('', undefined) : partType === 'refusal' ? { type: 'refusal', refusal: '' } : { type: 'reasoning_text', text: '' };
    this.#event('response.content_part.added', { item_id: open.id, output_index: open.index, content_index: open.parts.length, part });
  }

  #closePart(open: OpenText): void {
    const partType = open.partType;
    if (partType === undefined) return;
    const base = { item_id: open.id, output_index: open.index, content_index: open.parts.length };
    const part = partType === 'output_text' ? textPart(open.text, open.logprobs) : partType === 'refusal' ? { type: 'refusal', refusal: open.text } : { type: 'reasoning_text', text: open.text };
    if (partType === 'refusal') this.#event(DONE_OF_PART[partType], { ...base, refusal: open.text });
    else if (partType === 'output_text') this.#event(DONE_OF_PART[partType], { ...base, text: open.text, logprobs: open.logprobs ?? [] });
    else this.#event(DONE_OF_PART[partType], { ...base, text: open.text });
    this.#event('response.content_part.done', { ...base, part });
    open.parts.push(part);
    open.partType = undefined;
  }

  #closeOpen(status: string): void {
    const open = this.#open;
    if (open !== undefined) {
      this.#closePart(open);
      const item = open.kind === 'reasoning' ? reasoningItem(open.id, open.parts.map((part) => String(part['text'])).join('')) : messageItem(open.id, open.parts, status);
      this.#event('response.output_item.done', { output_index: open.index, item });
      this.#items.push(item);
      this.#open = undefined;
    }
    this.#closeCall();
  }

  // --- tool calls ---------------------------------------------------------------------

  #toolCalls(deltas: readonly unknown[]): void {
    for (const raw of deltas) {
      if (!isObject(raw)) continue;
      const fn = isObject(raw['function']) ? raw['function'] : {};
      const name = typeof fn['name'] === 'string' && fn['name'].length > 0 ? fn['name'] : undefined;
      const args = typeof fn['arguments'] === 'string' ? fn['arguments'] : isObject(fn['arguments']) ? JSON.stringify(fn['arguments']) : '';
      // Without an index (some Ollama versions), a named piece starts a call, a nameless one continues the last.
      const key = typeof raw['index'] === 'number' ? raw['index'] : name !== undefined ? this.#calls.size : this.#calls.size - 1;
      let call = this.#calls.get(key);
      if (call === undefined) {
        call = { id: upstreamId('fc_'), callId: typeof raw['id'] === 'string' && raw['id'].length > 0 ? raw['id'] : upstreamId('call_'), name, args: '', index: undefined, done: false };
        this.#calls.set(key, call);
      } else if (call.name === undefined && name !== undefined) {
        call.name = name;
      }
      if (call.done) {
        // Arguments for a call already ended: the Responses stream cannot take them back.
        this.#fail('invalid_chunk', 'The model server interleaved the arguments of parallel tool calls.');
        return;
      }
      if (call.index === undefined && call.name !== undefined) this.#announce(call);
      if (args.length === 0) continue;
      call.args += args;
      if (call.index !== undefined) this.#event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: args });
    }
  }

  #announce(call: Call): void {
    this.#closeOpen('completed');
    call.index = this.#nextIndex++;
    this.#openCall = call;
    this.#event('response.output_item.added', { output_index: call.index, item: functionCallItem(call.id, call.callId, call.name ?? '', '', 'in_progress') });
    // Arguments that came before the name (rare) are sent now.
    if (call.args.length > 0) this.#event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: call.args });
  }

  #closeCall(): void {
    const call = this.#openCall;
    if (call === undefined || call.index === undefined) return;
    this.#openCall = undefined;
    call.done = true;
    this.#event('response.function_call_arguments.done', { item_id: call.id, output_index: call.index, name: call.name, arguments: call.args });
    const item = functionCallItem(call.id, call.callId, call.name ?? '', call.args, 'completed');
    this.#event('response.output_item.done', { output_index: call.index, item });
    this.#items.push(item);
  }

  // --- the end ------------------------------------------------------------------------

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    if (!this.#created) {
      this.#created = true;
      this.#event('response.created', { response: this.#responseOf('in_progress', [], null, null) });
    }
    const ending = endingOf(this.#finishReason);
    this.#closeOpen(ending.status);
    // A call whose name never came cannot be shown; its arguments alone say nothing.
    const type = ending.status === 'completed' ? 'response.completed' : 'response.incomplete';
    this.#response = this.#responseOf(ending.status, this.#items, responsesUsage(this.#usage), ending.incompleteDetails);
    this.#event(type, { response: this.#response });
  }

  #fail(code: string, message: string): void {
    this.#over = true;
    this.#event('error', { code, message, param: null });
  }

  #responseOf(status: string, output: readonly JsonObject[], usage: JsonObject | null, incompleteDetails: JsonObject | null): JsonObject {
    return responseObject(this.#id, this.#createdAt, this.#model, status, output, usage, incompleteDetails);
  }

  #event(type: string, fields: JsonObject): void {
    fields['type'] = type;
    fields['sequence_number'] = this.#seq++;
    this.#out += `event: ${type}\ndata: ${JSON.stringify(fields)}\n\n`;
  }
}

/** Where the next event of `text` from `start` ends: its blank line (LF, or CRLF once seen). */
function nextBoundary(text: string, start: number, crlf: boolean): { at: number; length: number } | undefined {
  const lf = text.indexOf('\n\n', start);
  const cr = crlf ? text.indexOf('\r\n\r\n', start) : -1;
  if (lf === -1 && cr === -1) return undefined;
  if (cr !== -1 && (lf === -1 || cr < lf)) return { at: cr, length: 4 };
  return { at: lf, length: 2 };
}

/**
 * A whole chat completion (`chat.completion`), read as the one chunk of a stream: the
 * events a client that asked for a stream gets (some servers answer a streamed request
 * whole), and the response they end with (what a client that asked for JSON gets). One
 * reading for both, so a whole answer says exactly what the same answer streamed says.
 * Undefined when `completion` is not one.
 */
export function translateCompletion(completion: unknown): { readonly events: string; readonly response: JsonObject } | undefined {
  if (!isObject(completion) || !Array.isArray(completion['choices'])) return undefined;
  const choice = (completion['choices'] as unknown[]).find((entry) => isObject(entry) && (entry['index'] === undefined || entry['index'] === 0));
  if (!isObject(choice) || !isObject(choice['message'])) return undefined;
  const message = choice['message'];
  const calls = Array.isArray(message['tool_calls']) ? (message['tool_calls'] as unknown[]) : [];
  const delta: JsonObject = { ...message, tool_calls: calls.map((call, index) => (isObject(call) ? { ...call, index } : call)) };
  const chunk = { ...completion, choices: [{ index: 0, delta, logprobs: choice['logprobs'] ?? null, finish_reason: choice['finish_reason'] ?? 'stop' }] };
  const translator = new ChatStreamTranslator();
  const events = translator.push(Buffer.from(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`)) + translator.end();
  const response = translator.response;
  return response === undefined ? undefined : { events, response };
}
