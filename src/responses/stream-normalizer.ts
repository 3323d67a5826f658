// Rewrites vLLM's Responses event stream, event by event, into what OpenAI's API sends
// (docs: README "What the gateway fixes in vLLM's output"):
// - one id per output item (the gateway's, with OpenAI's prefix) in every event and in
//   the terminal response; one call_id per function call; the response id is the
//   gateway's, which is the id the response is stored under;
// - sequence_number from 0 without gaps, whatever the gateway adds or drops; an
//   `event:` line equal to every event's type;
// - every delta inside an item and part announced before it (missing announcements are
//   sent first); vLLM's reasoning_part.* become content_part.* as OpenAI's SDKs expect;
// - joined text deltas equal the .done text and the terminal text; function-call
//   argument deltas are held until the final arguments are known, and replaced by them
//   when they do not join to them;
// - exactly one terminal event, then `data: [DONE]`; a failure or a stream that ends
//   without one gets an `error` event and response.failed.
//
// Three jobs, three modules: reading vLLM's events (vllm-events.ts), tracking the output
// items and parts (output-items.ts), rendering the events the client gets, with their
// sequence numbers (event-renderer.ts). This class decides, per vLLM event, what to track
// and what to send. Delta events (nearly all of a stream) are rewritten by splicing two or
// three fields; only the few structural events are parsed.
import { GatewayError, toErrorObject } from '../errors.ts';
import type { LogSource } from '../observability/logger.ts';
import type { Emit, EventStreamTransform, ReportedUsage } from '../upstream/relay.ts';
import { DONE_LINE, EventRenderer } from './event-renderer.ts';
import { normalizeOutputItem, type Json } from './items.ts';
import { decodeJsonString, field, integerSpan, stringSpan, type Replacement, type Span } from './json-fields.ts';
import {
  DELTA_PART_TYPE,
  DELTA_TYPE_OF_PART,
  DONE_PART_TYPE,
  DONE_TYPE_OF_PART,
  emptyPart,
  finishedPart,
  itemTypeOfPart,
  OutputItems,
  TEXT_FIELD_OF_PART,
  type ItemState,
  type PartState,
  type ToolRoute,
} from './output-items.ts';
import { customInput, restoredCall } from './client-tools.ts';
import { mcpCallItem } from './mcp-items.ts';
import { addUsage, normalizeResponse, responseError, type ResponseFacts } from './response-object.ts';
import { decodeParts, endsWithType, eventTypeAt, parseEventLines } from './vllm-events.ts';

/** A stream's last lines (terminal event, [DONE]): at once, or once the response is stored. */
type Closing = string[] | Promise<string[]>;

/** What the stream hands over when the response is done (to store it). */
export interface StreamHooks {
  /** Called with the final response and its JSON text before the terminal event is sent;
   * the terminal event waits for the returned promise. A rejection fails the stream. */
  finish(response: Json, json: string): Promise<void> | undefined;
}

/** What a server-side tool loop (runs/agent-loop.ts) is told at the end of each vLLM call. */
export interface TurnEnd {
  /** This turn's calls of server-side tools, their arguments complete, waiting to run. */
  readonly calls: readonly ItemState[];
  /** The response ends with this turn whatever its tools give: the model called one of
   * the client's functions, asked for an approval, or stopped short. */
  readonly endsResponse: boolean;
  /** Sends events now (each tool's result as it arrives), in order with the stream's. */
  readonly emit: Emit;
}

/** A response whose model calls server-side tools: one stream over several vLLM calls. */
export interface AgentHooks {
  /** The server-side tool a function name of vLLM's stands for, if it does. */
  route(functionName: string): ToolRoute | undefined;
  /** Runs the turn's calls; true when another vLLM call follows (the agent makes it). */
  turnEnded(turn: TurnEnd): Promise<boolean>;
}

/** A server-side tool's result. */
export type ToolResult = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly error: string };

const ITEM_ID = field('item_id');
const OUTPUT_INDEX = field('output_index');
const CONTENT_INDEX = field('content_index');
const DELTA = field('delta');
const SEQUENCE_NUMBER = field('sequence_number');
const TYPE = field('type');

/** The text delta types, looked for in place (see #deltaInPlace). */
const TEXT_DELTA_TYPES: readonly string[] = Object.keys(DELTA_PART_TYPE);
/** The length of `event: ` + `\n` + `data: ` around an event's type. */
const EVENT_FRAME = 'event: \ndata: '.length;
/** An integer field's place and value. */
type IndexSpan = Span & { readonly value: number };

const TERMINAL_TYPES = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class StreamNormalizer implements EventStreamTransform {
  readonly kind = 'events';
  readonly #facts: ResponseFacts;
  readonly #hooks: StreamHooks;
  readonly #log: LogSource;
  /** What was output so far (tracking). */
  readonly #output = new OutputItems();
  /** The events' text and sequence numbers (rendering). */
  readonly #render = new EventRenderer();
  /** vLLM's last response object (from created/in_progress), the base of a failed one. */
  #upstreamResponse: Json = {};
  #createdSent = false;
  #ended = false;
  /** Set when the response runs server-side tools (several vLLM calls, one stream). */
  readonly #agent: AgentHooks | undefined;
  /** A vLLM call ended and the agent makes the next: the end of its body is no failure. */
  #betweenTurns = false;
  /** The usage of the vLLM calls so far (a tool loop's response reports their sum). */
  #usage: unknown = undefined;
  /** The usage of the vLLM call in progress, once its terminal event came (takeUsage). */
  #bodyUsage: ReportedUsage | undefined = undefined;
  /** The emit of the events being handled (a tool's result is sent through it). */
  #emit: Emit | undefined;
  /** The gateway's error that failed the stream, when one did (vLLM gone, a store failure). */
  failure: GatewayError | undefined;

  /** The client's tools vLLM was offered under other names (custom, namespaced). */
  readonly #clientRoutes: ((functionName: string) => ToolRoute | undefined) | undefined;

  constructor(
    facts: ResponseFacts,
    hooks: StreamHooks,
    log: LogSource,
    agent?: AgentHooks,
    clientRoutes?: (functionName: string) => ToolRoute | undefined,
  ) {
    this.#facts = facts;
    this.#hooks = hooks;
    this.#log = log;
    this.#agent = agent;
    this.#clientRoutes = clientRoutes;
  }

  onEvents(parts: readonly Buffer[], emit: Emit): void | Promise<void> {
    if (this.#agent !== undefined) this.#emit = emit;
    let text = decodeParts(parts);
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    const out: string[] = [];
    let start = 0;
    while (start < text.length && !this.#ended) {
      let end = text.indexOf('\n\n', start);
      if (end === -1) end = text.length;
      if (this.#inPlace && this.#deltaInPlace(text, start, end, out)) {
        start = end + 2;
        continue;
      }
      const pending = this.#event(text.slice(start, end), out);
      start = end + 2;
      if (pending instanceof Promise) {
        // Events before the terminal one leave now; the terminal one waits for the store.
        emit(out.splice(0));
        return pending.then((tail) => emit(tail));
      }
      // Nothing to store: the terminal event and [DONE] leave with the rest, at once.
      if (pending !== undefined) for (const line of pending) out.push(line);
    }
    emit(out);
  }

  onEnd(emit: Emit): void | Promise<void> {
    if (this.#ended) return this.#closed();
    if (this.#betweenTurns) return;
    const failure = new GatewayError(
      'upstream_stream_interrupted',
      'The model server ended the stream without completing the response.',
    );
    return this.#fail(failure, emit);
  }

  takeUsage(): ReportedUsage | undefined {
    const usage = this.#bodyUsage;
    this.#bodyUsage = undefined;
    return usage;
  }

  onFailure(error: GatewayError, emit: Emit): void | Promise<void> {
    if (this.#ended) return this.#closed();
    return this.#fail(error, emit);
  }

  /**
   * Ends the stream as cancelled (a background run stopped by its client): no more events;
   * the response with what was generated so far, open items incomplete.
   */
  cancelledResponse(): Json {
    this.#ended = true;
    // The closing events this would send are not sent: a cancelled stream just ends.
    const unsent: string[] = [];
    for (const item of this.#output.items) this.#finishItem(item, {}, 'incomplete', unsent);
    return normalizeResponse(this.#upstreamResponse, this.#facts, {
      status: 'cancelled',
      output: this.#output.finals(),
      error: null,
      usage: null,
    });
  }

  /** True once the terminal event (or a cancellation) ended the stream. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The stream's last lines while they wait for the store (see #close). */
  #closing: Promise<string[]> | undefined;

  /**
   * Settles once an ended stream's last lines have been handed over: at once (undefined)
   * unless they still wait for the store. Whoever ends the response meanwhile (the relay at
   * the end of vLLM's body, a failure) waits for it, or the client would lose them.
   */
  #closed(): Promise<void> | undefined {
    return this.#closing?.then(
      () => undefined,
      () => undefined,
    );
  }

  // --- one event ---------------------------------------------------------------

  /** Handles one event; returns the closing output for a terminal event (see #close). */
  #event(raw: string, out: string[]): Closing | undefined {
    const { name, data } = parseEventLines(raw);
    if (data === undefined || data === '[DONE]') return undefined;
    // The event: line is only trusted when the data's type agrees (vLLM puts type last).
    let type = name;
    if (type === undefined || !(endsWithType(data, type) || data.includes(`"type":"${type}"`))) {
      const span = stringSpan(data, TYPE);
      type = span === undefined ? undefined : data.slice(span.start, span.end);
    }
    if (type === undefined) return undefined;

    const partType = DELTA_PART_TYPE[type];
    if (partType !== undefined) {
      this.#textDelta(type, partType, data, out);
      return undefined;
    }
    if (type === 'response.function_call_arguments.delta') {
      this.#argumentsDelta(data, out);
      return undefined;
    }
    if (type === 'response.in_progress' && this.#createdSent && this.#agent === undefined) {
      // It repeats response.created's response: no need to parse it.
      this.#sendResponseEvent(out, type, 'in_progress');
      return undefined;
    }
    let event: Json;
    try {
      event = JSON.parse(data) as Json;
    } catch {
      this.#log().warn({ type }, 'dropped an upstream event that is not JSON');
      return undefined;
    }
    return this.#structural(type, event, out);
  }

  #structural(type: string, event: Json, out: string[]): Closing | undefined {
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
      case 'response.queued':
        // in_progress repeats created's response: keep the first one (and its normalized form).
        if (isObject(event['response']) && (type === 'response.created' || !this.#createdSent)) this.#upstreamResponse = event['response'];
        // A tool loop's stream was opened by the gateway, before the first vLLM call.
        if (this.#agent !== undefined) return undefined;
        if (type === 'response.created') this.#createdSent = true;
        else this.#ensureCreated(out);
        this.#sendResponseEvent(out, type, type === 'response.queued' ? 'queued' : 'in_progress');
        if (type === 'response.in_progress') this.#sendLeadingItems(out);
        return undefined;
      case 'response.output_item.added':
        this.#sendLeadingItems(out);
        this.#itemAdded(event, out);
        return undefined;
      case 'response.content_part.added':
      case 'response.reasoning_part.added':
        this.#partAdded(event, out);
        return undefined;
      case 'response.output_text.done':
      case 'response.refusal.done':
      case 'response.reasoning_text.done':
        this.#textDone(type, event, out);
        return undefined;
      case 'response.content_part.done':
      case 'response.reasoning_part.done':
        this.#partDone(event, out);
        return undefined;
      case 'response.function_call_arguments.done':
        this.#argumentsDone(event, out);
        return undefined;
      case 'response.output_item.done':
        this.#itemDone(event, out);
        return undefined;
      case 'error':
        return this.#upstreamError(event, out);
      default:
        if (TERMINAL_TYPES.has(type)) return this.#terminal(type, event, out);
        this.#other(type, event, out);
        return undefined;
    }
  }

  // --- sending --------------------------------------------------------------------

  /** The response of created/in_progress events (the same for both), as JSON, built once. */
  #inProgress: { status: string; upstream: Json; json: string } | undefined;

  #sendResponseEvent(out: string[], type: string, status: string): void {
    let cached = this.#inProgress;
    if (cached === undefined || cached.status !== status || cached.upstream !== this.#upstreamResponse) {
      const response = normalizeResponse(this.#upstreamResponse, this.#facts, { status, output: [], usage: null, error: null });
      cached = { status, upstream: this.#upstreamResponse, json: JSON.stringify(response) };
      this.#inProgress = cached;
    }
    out.push(this.#render.responseEvent(type, cached.json));
    // in_progress is the last to repeat it (a tool loop's stream may open again): not kept
    // for the rest of the stream (a kilobyte a stream).
    if (type === 'response.in_progress' && this.#agent === undefined) this.#inProgress = undefined;
  }

  #leadingSent = false;

  /** The gateway's own items that come first (a server-side compaction), once, before vLLM's. */
  #sendLeadingItems(out: string[]): void {
    const leading = this.#facts.leadingItems;
    if (this.#leadingSent || leading === undefined || leading.length === 0) return;
    this.#leadingSent = true;
    this.#ensureCreated(out);
    for (const made of leading) {
      const item = this.addGatewayItem(out, String(made['type']), (id) => ({ ...made, id }));
      this.finishGatewayItem(out, item, { ...made, id: item.id });
    }
  }

  /** A stream must open with response.created; vLLM's always does, but not every server's. */
  #ensureCreated(out: string[]): void {
    if (this.#createdSent) return;
    this.#createdSent = true;
    this.#sendResponseEvent(out, 'response.created', 'in_progress');
  }

  // --- items and parts ---------------------------------------------------------------

  #addedItemJson(item: ItemState, raw: Json): Json {
    const route = item.route;
    if (route !== undefined && route.kind !== 'function_call' && route.kind !== 'custom_tool_call') return this.#routedItemJson(item, '', 'in_progress');
    const added = normalizeOutputItem({ ...raw, status: 'in_progress' }, item.id, 'in_progress', this.#facts.keepRawFields);
    if (item.type === 'message' || item.type === 'reasoning') added['content'] = [];
    if (item.type === 'function_call') {
      added['arguments'] = '';
      added['call_id'] = item.callId;
    }
    return route === undefined ? added : restoredCall(added, route);
  }

  #itemAdded(event: Json, out: string[]): void {
    this.#ensureCreated(out);
    const raw = isObject(event['item']) ? event['item'] : {};
    const type = typeof raw['type'] === 'string' ? raw['type'] : 'message';
    const upstreamIndex = typeof event['output_index'] === 'number' ? event['output_index'] : undefined;
    const name = raw['name'];
    const route = type === 'function_call' && typeof name === 'string' ? (this.#agent?.route(name) ?? this.#clientRoutes?.(name)) : undefined;
    const item = this.#output.add(type, typeof raw['id'] === 'string' ? raw['id'] : undefined, upstreamIndex, raw, route);
    this.#render.send(out, 'response.output_item.added', { output_index: item.index, item: this.#addedItemJson(item, raw) });
    if (route?.kind === 'mcp_call') this.#render.send(out, 'response.mcp_call.in_progress', { item_id: item.id, output_index: item.index });
  }

  /** A server-side call as the client sees it: an mcp_call, or an approval request. */
  #routedItemJson(item: ItemState, args: string, status: string, result?: { output: string | null; error: string | null }): Json {
    const route = item.route as Extract<ToolRoute, { kind: 'mcp_call' | 'mcp_approval_request' }>;
    if (route.kind === 'mcp_approval_request') {
      return { id: item.id, type: 'mcp_approval_request', arguments: args, name: route.name, server_label: route.serverLabel };
    }
    return mcpCallItem({
      id: item.id,
      status,
      approvalRequestId: null,
      arguments: args,
      error: result?.error ?? null,
      name: route.name,
      output: result?.output ?? null,
      serverLabel: route.serverLabel,
    });
  }

  /** The item for a delta or done event; announced first if vLLM never announced it. */
  #itemFor(outputIndex: number | undefined, itemId: string | undefined, itemType: string, out: string[]): ItemState {
    const found = this.#output.find(outputIndex, itemId);
    if (found !== undefined) return found;
    this.#ensureCreated(out);
    const item = this.#output.add(itemType, itemId, outputIndex, { type: itemType, role: 'assistant' });
    this.#render.send(out, 'response.output_item.added', {
      output_index: item.index,
      item: this.#addedItemJson(item, { type: itemType, role: 'assistant' }),
    });
    return item;
  }

  /** The part for a delta or done event; announced first if vLLM never announced it. */
  #partFor(item: ItemState, contentIndex: number | undefined, partType: string, out: string[]): PartState {
    const found = item.partsByUpstreamIndex.get(contentIndex ?? 0);
    if (found !== undefined && !found.done) return found;
    const part = this.#output.addPart(item, partType, contentIndex ?? 0);
    this.#render.send(out, 'response.content_part.added', {
      item_id: item.id,
      output_index: item.index,
      content_index: part.index,
      part: emptyPart(partType),
    });
    return part;
  }

  #partAdded(event: Json, out: string[]): void {
    const rawPart = isObject(event['part']) ? event['part'] : {};
    const partType = typeof rawPart['type'] === 'string' ? rawPart['type'] : 'output_text';
    const item = this.#itemFor(
      event['output_index'] as number | undefined,
      event['item_id'] as string | undefined,
      itemTypeOfPart(partType),
      out,
    );
    const part = this.#output.addPart(item, partType, event['content_index'] as number | undefined);
    this.#render.send(out, 'response.content_part.added', {
      item_id: item.id,
      output_index: item.index,
      content_index: part.index,
      part: emptyPart(partType),
    });
  }

  // --- deltas (the hot path) --------------------------------------------------------------

  /** False once a delta of this stream was not in the shape #deltaInPlace reads. */
  #inPlace = true;

  /**
   * A text delta read and rewritten where it lies in the text of the chunk (text[start,
   * end), no copy of the event, its name or its data): vLLM's shape, its fields in vLLM's
   * order, only the item id and the sequence number changed, spliced between slices of
   * the original. Anything else returns false and takes the general way (#event); a
   * delta in another shape also turns this off for the rest of the stream, since a field
   * it lacks would be searched for through the whole rest of the text, event after event.
   */
  #deltaInPlace(text: string, start: number, end: number, out: string[]): boolean {
    const type = eventTypeAt(text, start, end, TEXT_DELTA_TYPES);
    if (type === undefined) return false;
    const dataStart = start + EVENT_FRAME + type.length;
    const contentSpan = integerSpan(text, CONTENT_INDEX, dataStart);
    const deltaSpan = contentSpan && stringSpan(text, DELTA, contentSpan.end);
    const idSpan = deltaSpan && stringSpan(text, ITEM_ID, deltaSpan.end);
    const outputSpan = idSpan && integerSpan(text, OUTPUT_INDEX, idSpan.end);
    const sequenceSpan = outputSpan && integerSpan(text, SEQUENCE_NUMBER, outputSpan.end);
    if (contentSpan === undefined || deltaSpan === undefined || idSpan === undefined || outputSpan === undefined || sequenceSpan === undefined || sequenceSpan.end > end) {
      this.#inPlace = false;
      return false;
    }
    const partType = DELTA_PART_TYPE[type] as string;
    const item =
      this.#output.atUpstreamIndex(outputSpan.value) ??
      this.#itemFor(outputSpan.value, text.slice(idSpan.start, idSpan.end), itemTypeOfPart(partType), out);
    const part = this.#partFor(item, contentSpan.value, partType, out);
    part.raw.push(text.slice(deltaSpan.start, deltaSpan.end));
    if (outputSpan.value === item.index && contentSpan.value === part.index) {
      this.#render.deltaInPlace(out, text, start, end, idSpan, item.id, sequenceSpan);
      return true;
    }
    // Indices the client sees otherwise: spliced in a copy of the data.
    const inData = <T extends Span>(span: T): T => ({ ...span, start: span.start - dataStart, end: span.end - dataStart });
    this.#splicedDelta(out, type, text.slice(dataStart, end), inData(idSpan), inData(outputSpan), inData(contentSpan), item, part);
    return true;
  }

  /** A delta whose indices the client sees otherwise (items the gateway sent first):
   * vLLM's data with the item id, and the indices that differ, replaced. */
  #splicedDelta(out: string[], type: string, data: string, idSpan: Span, outputSpan: IndexSpan, contentSpan: IndexSpan, item: ItemState, part: PartState): void {
    const replacements: Replacement[] = [{ span: idSpan, text: item.id }];
    if (outputSpan.value !== item.index) replacements.push({ span: outputSpan, text: String(item.index) });
    if (contentSpan.value !== part.index) replacements.push({ span: contentSpan, text: String(part.index) });
    this.#render.spliced(out, type, data, replacements);
  }

  #textDelta(type: string, partType: string, data: string, out: string[]): void {
    // vLLM and OpenAI both write these fields in this order (not all adjacent), so each
    // search starts where the last one ended; a miss falls back to the whole text.
    const contentSpan = integerSpan(data, CONTENT_INDEX);
    const deltaSpan = stringSpan(data, DELTA, contentSpan?.end) ?? stringSpan(data, DELTA);
    const idSpan = stringSpan(data, ITEM_ID, deltaSpan?.end) ?? stringSpan(data, ITEM_ID);
    const outputSpan = integerSpan(data, OUTPUT_INDEX, idSpan?.end) ?? integerSpan(data, OUTPUT_INDEX);
    const item = this.#itemFor(
      outputSpan?.value,
      idSpan === undefined ? undefined : data.slice(idSpan.start, idSpan.end),
      itemTypeOfPart(partType),
      out,
    );
    const part = this.#partFor(item, contentSpan?.value, partType, out);
    if (idSpan === undefined || outputSpan === undefined || contentSpan === undefined || deltaSpan === undefined) {
      // Not the shape the fast path knows: rebuild it from its parsed form.
      const { type: _type, sequence_number: _sequence, ...fields } = JSON.parse(data) as Json;
      if (typeof fields['delta'] === 'string') part.raw.push(JSON.stringify(fields['delta']).slice(1, -1));
      this.#render.send(out, type, { ...fields, item_id: item.id, output_index: item.index, content_index: part.index });
      return;
    }
    part.raw.push(data.slice(deltaSpan.start, deltaSpan.end));
    const indicesMatch = outputSpan.value === item.index && contentSpan.value === part.index;
    const sequenceSpan = integerSpan(data, SEQUENCE_NUMBER, outputSpan.end);
    if (indicesMatch && sequenceSpan !== undefined) {
      // The common case: only the item id and the sequence number change.
      this.#render.deltaWithId(out, type, data, idSpan, item.id, sequenceSpan);
      return;
    }
    this.#splicedDelta(out, type, data, idSpan, outputSpan, contentSpan, item, part);
  }

  #argumentsDelta(data: string, out: string[]): void {
    const idSpan = stringSpan(data, ITEM_ID);
    const outputSpan = integerSpan(data, OUTPUT_INDEX);
    const item = this.#itemFor(
      outputSpan?.value,
      idSpan === undefined ? undefined : data.slice(idSpan.start, idSpan.end),
      'function_call',
      out,
    );
    // Held until function_call_arguments.done tells whether they join to the final arguments.
    item.heldArguments.push(data);
  }

  #argumentsDone(event: Json, out: string[]): void {
    const item = this.#itemFor(event['output_index'] as number | undefined, event['item_id'] as string | undefined, 'function_call', out);
    const final = typeof event['arguments'] === 'string' ? event['arguments'] : '';
    this.#releaseArguments(item, final, out);
    this.#argumentsDoneEvent(item, final, item.name ?? event['name'], out);
  }

  /** The arguments' done event: a function call's, an MCP call's, none for an approval request. */
  #argumentsDoneEvent(item: ItemState, final: string, name: unknown, out: string[]): void {
    const route = item.route;
    if (route === undefined || route.kind === 'function_call') {
      const shown = route === undefined ? name : route.name;
      this.#render.send(out, 'response.function_call_arguments.done', { item_id: item.id, output_index: item.index, name: shown, arguments: final });
    } else if (route.kind === 'custom_tool_call') {
      this.#render.send(out, 'response.custom_tool_call_input.done', { item_id: item.id, output_index: item.index, input: customInput(final) });
    } else if (route.kind === 'mcp_call') {
      this.#render.send(out, 'response.mcp_call_arguments.done', { item_id: item.id, output_index: item.index, arguments: final });
    }
  }

  /** Sends the held argument deltas, or one delta with the final arguments if they differ. */
  #releaseArguments(item: ItemState, final: string, out: string[]): void {
    if (item.finalArguments !== undefined) return;
    item.finalArguments = final;
    if (item.route !== undefined && item.route.kind !== 'function_call') {
      this.#releaseToolArguments(item, final, out);
      return;
    }
    let joined = '';
    for (const data of item.heldArguments) {
      const span = stringSpan(data, DELTA);
      if (span !== undefined) joined += data.slice(span.start, span.end);
    }
    if (decodeJsonString(joined) === final) {
      for (const data of item.heldArguments) {
        const replacements: Replacement[] = [];
        const idSpan = stringSpan(data, ITEM_ID);
        if (idSpan !== undefined) replacements.push({ span: idSpan, text: item.id });
        const outputSpan = integerSpan(data, OUTPUT_INDEX);
        if (outputSpan !== undefined && outputSpan.value !== item.index) replacements.push({ span: outputSpan, text: String(item.index) });
        this.#render.spliced(out, 'response.function_call_arguments.delta', data, replacements);
      }
    } else {
      if (item.heldArguments.length > 0) {
        this.#log().debug({ item_id: item.id }, 'function call argument deltas did not join to the final arguments; sent the final ones');
      }
      if (final.length > 0) {
        this.#render.send(out, 'response.function_call_arguments.delta', { item_id: item.id, output_index: item.index, delta: final });
      }
    }
    item.heldArguments.length = 0;
  }

  /** A server-side call's argument deltas, re-typed (an approval request has none). */
  #releaseToolArguments(item: ItemState, final: string, out: string[]): void {
    const held = item.heldArguments.splice(0);
    if (item.route?.kind === 'custom_tool_call') {
      // The input is a string inside the arguments' JSON: sent whole once it is known.
      const input = customInput(final);
      if (input.length > 0) this.#render.send(out, 'response.custom_tool_call_input.delta', { item_id: item.id, output_index: item.index, delta: input });
      return;
    }
    if (item.route?.kind !== 'mcp_call') return;
    const deltas: string[] = [];
    for (const data of held) {
      const span = stringSpan(data, DELTA);
      if (span !== undefined) deltas.push(decodeJsonString(data.slice(span.start, span.end)));
    }
    const send = deltas.join('') === final ? deltas : final.length > 0 ? [final] : [];
    for (const delta of send) this.#render.send(out, 'response.mcp_call_arguments.delta', { item_id: item.id, output_index: item.index, delta });
  }

  // --- done events ---------------------------------------------------------------------

  /** Closes a part: the text the client saw is the text; vLLM's extra tail is sent as a delta. */
  #closePart(item: ItemState, part: PartState, reportedText: string | undefined, out: string[]): string {
    const seen = decodeJsonString(part.raw.joined());
    let text = seen;
    if (reportedText !== undefined && reportedText !== seen) {
      if (reportedText.startsWith(seen)) {
        this.#render.send(out, DELTA_TYPE_OF_PART[part.type] ?? 'response.output_text.delta', {
          item_id: item.id,
          output_index: item.index,
          content_index: part.index,
          delta: reportedText.slice(seen.length),
          ...(part.type === 'output_text' ? { logprobs: [] } : {}),
        });
        text = reportedText;
      } else {
        this.#log().debug({ item_id: item.id }, 'text deltas did not join to the done text; kept what the client saw');
      }
    }
    part.finalText = text;
    return text;
  }

  #textDone(type: string, event: Json, out: string[]): void {
    const partType = DONE_PART_TYPE[type] ?? 'output_text';
    const item = this.#itemFor(event['output_index'] as number | undefined, event['item_id'] as string | undefined, itemTypeOfPart(partType), out);
    const part = this.#partFor(item, event['content_index'] as number | undefined, partType, out);
    if (part.finalText !== undefined) return;
    const field = TEXT_FIELD_OF_PART[partType] ?? 'text';
    const text = this.#closePart(item, part, typeof event[field] === 'string' ? event[field] : undefined, out);
    this.#render.send(out, type, {
      item_id: item.id,
      output_index: item.index,
      content_index: part.index,
      [field]: text,
      ...(partType === 'output_text' ? { logprobs: [] } : {}),
    });
  }

  /** Sends text.done (if missing) and content_part.done for a part. */
  #finishPart(item: ItemState, part: PartState, out: string[]): void {
    if (part.done) return;
    if (part.finalText === undefined) {
      const field = TEXT_FIELD_OF_PART[part.type] ?? 'text';
      const text = this.#closePart(item, part, undefined, out);
      this.#render.send(out, DONE_TYPE_OF_PART[part.type] ?? 'response.output_text.done', {
        item_id: item.id,
        output_index: item.index,
        content_index: part.index,
        [field]: text,
        ...(part.type === 'output_text' ? { logprobs: [] } : {}),
      });
    }
    part.done = true;
    this.#render.send(out, 'response.content_part.done', {
      item_id: item.id,
      output_index: item.index,
      content_index: part.index,
      part: finishedPart(part),
    });
  }

  #partDone(event: Json, out: string[]): void {
    const item = this.#output.find(event['output_index'] as number | undefined, event['item_id'] as string | undefined);
    const part = item?.partsByUpstreamIndex.get((event['content_index'] as number | undefined) ?? 0);
    if (item === undefined || part === undefined) return; // never announced, nothing to close
    this.#finishPart(item, part, out);
  }

  /** The item as it is final: OpenAI's shape, the text and arguments the client saw. */
  #finalItem(item: ItemState, raw: Json, status: string): Json {
    const route = item.route;
    if (route?.kind === 'mcp_call' || route?.kind === 'mcp_approval_request') {
      const args = item.finalArguments ?? (typeof raw['arguments'] === 'string' ? raw['arguments'] : '');
      const notRun = status === 'completed' ? null : { output: null, error: 'The call was not run: the response ended first.' };
      return this.#routedItemJson(item, args, status, notRun ?? undefined);
    }
    // A client tool offered under another name: the function call, restored as its own.
    return route === undefined ? this.#plainFinalItem(item, raw, status) : restoredCall(this.#plainFinalItem(item, raw, status), route);
  }

  #plainFinalItem(item: ItemState, raw: Json, status: string): Json {
    const final = normalizeOutputItem({ ...raw, status }, item.id, status, this.#facts.keepRawFields);
    if (item.type === 'message' || item.type === 'reasoning') {
      if (item.parts.length > 0 || !Array.isArray(final['content']) || final['content'].length === 0) {
        final['content'] = item.parts.map(finishedPart);
      }
    }
    if (item.type === 'reasoning' && this.#facts.sealReasoning !== undefined) final['encrypted_content'] = this.#facts.sealReasoning(final);
    if (item.type === 'function_call') {
      final['arguments'] = item.finalArguments ?? (typeof raw['arguments'] === 'string' ? raw['arguments'] : '');
      final['call_id'] = item.callId;
      if (final['name'] === undefined) final['name'] = item.name;
    }
    return final;
  }

  /** Sends whatever closing events vLLM skipped, then output_item.done. */
  #finishItem(item: ItemState, raw: Json, status: string, out: string[]): void {
    if (item.final !== undefined || (item.awaitingTool && status === 'completed')) return;
    for (const part of item.parts) this.#finishPart(item, part, out);
    if (item.type === 'function_call' && item.finalArguments === undefined) {
      const final = typeof raw['arguments'] === 'string' ? raw['arguments'] : '';
      this.#releaseArguments(item, final, out);
      this.#argumentsDoneEvent(item, final, item.name, out);
    }
    if (item.route?.kind === 'mcp_call' && status === 'completed') {
      // Its output_item.done waits for the tool (completeToolCall).
      item.awaitingTool = true;
      return;
    }
    item.awaitingTool = false;
    item.final = this.#finalItem(item, raw, status);
    this.#render.send(out, 'response.output_item.done', { output_index: item.index, item: item.final });
  }

  #itemDone(event: Json, out: string[]): void {
    const raw = isObject(event['item']) ? event['item'] : {};
    const type = typeof raw['type'] === 'string' ? raw['type'] : 'message';
    const item = this.#itemFor(event['output_index'] as number | undefined, raw['id'] as string | undefined, type, out);
    const status = raw['status'] === 'incomplete' ? 'incomplete' : 'completed';
    this.#finishItem(item, raw, status, out);
  }

  #other(type: string, event: Json, out: string[]): void {
    const item = this.#output.find(event['output_index'] as number | undefined, event['item_id'] as string | undefined);
    const { type: _type, sequence_number: _sequence, ...fields } = event;
    if (item !== undefined) {
      if ('item_id' in event) fields['item_id'] = item.id;
      if ('output_index' in event) fields['output_index'] = item.index;
    }
    this.#render.send(out, type, fields);
  }

  // --- the end ---------------------------------------------------------------------------

  /** The final output: the items as streamed, plus any only the terminal response has. */
  #finalOutput(upstreamOutput: unknown, status: string, out: string[]): Json[] {
    const rawItems = Array.isArray(upstreamOutput) ? (upstreamOutput as unknown[]) : [];
    rawItems.forEach((raw, upstreamIndex) => {
      if (!isObject(raw)) return;
      const item = this.#output.atUpstreamIndex(upstreamIndex);
      if (item !== undefined) {
        this.#finishItem(item, raw, status === 'completed' ? 'completed' : 'incomplete', out);
      } else {
        const type = typeof raw['type'] === 'string' ? raw['type'] : 'message';
        const added = this.#output.add(type, undefined, upstreamIndex, raw);
        this.#render.send(out, 'response.output_item.added', { output_index: added.index, item: this.#addedItemJson(added, raw) });
        this.#finishItem(added, raw, 'completed', out);
      }
    });
    for (const item of this.#output.items) if (!item.awaitingTool) this.#finishItem(item, {}, 'incomplete', out);
    return this.#output.finals();
  }

  #terminal(type: string, event: Json, out: string[]): Closing {
    this.#ensureCreated(out);
    this.#sendLeadingItems(out);
    const upstream = isObject(event['response']) ? event['response'] : {};
    this.#bodyUsage = { usage: upstream['usage'], model: upstream['model'] };
    const status = type === 'response.completed' ? 'completed' : type === 'response.incomplete' ? 'incomplete' : 'failed';
    const output = this.#finalOutput(upstream['output'], status, out);
    if (this.#agent !== undefined) return this.#turnEnd(this.#agent, type, upstream, status);
    const response = normalizeResponse(upstream, this.#facts, { status, output });
    return this.#close(type, response);
  }

  /**
   * The end of one vLLM call of a tool loop: its server-side calls run (the agent sends
   * their results as they come); then either the agent makes the next call, or this was
   * the last and the response ends with every call's usage.
   */
  #turnEnd(agent: AgentHooks, type: string, upstream: Json, status: string): Promise<string[]> {
    this.#usage = addUsage(this.#usage, upstream['usage']);
    const items = this.#output.items;
    const calls = items.filter((item) => item.awaitingTool);
    // Any call that is not a server-side one (the client's functions and custom tools, an
    // approval request) is the client's to answer.
    const endsResponse = status !== 'completed' || items.some((item) => item.type === 'function_call' && item.route?.kind !== 'mcp_call');
    const emit = this.#emit ?? (() => undefined);
    // A microtask later: the events before this point leave first (onEvents emits them).
    return Promise.resolve()
      .then(() => agent.turnEnded({ calls, endsResponse, emit }))
      .then((more) => {
        if (this.#ended) return [];
        if (more) {
          this.#betweenTurns = true;
          return [];
        }
        const out: string[] = [];
        for (const item of items) if (item.final === undefined) this.#finishItem(item, {}, 'incomplete', out);
        const response = normalizeResponse(upstream, this.#facts, { status, output: this.#output.finals(), usage: this.#usage });
        const closing = this.#close(type, response);
        return closing instanceof Promise ? closing.then((tail) => [...out, ...tail]) : [...out, ...closing];
      });
  }

  // --- what a tool loop does between vLLM calls (runs/agent-loop.ts) ----------------------

  /** Opens the stream before vLLM is called: response.created and response.in_progress. */
  open(out: string[]): void {
    this.#ensureCreated(out);
    this.#sendResponseEvent(out, 'response.in_progress', 'in_progress');
    this.#sendLeadingItems(out);
  }

  /** An item the gateway makes (a tool list, an approved call), announced now. */
  addGatewayItem(out: string[], type: string, build: (id: string) => Json, route?: ToolRoute): ItemState {
    const item = this.#output.add(type, undefined, undefined, {}, route);
    this.#render.send(out, 'response.output_item.added', { output_index: item.index, item: build(item.id) });
    return item;
  }

  /** An event about an item: {item_id, output_index, ...fields}. */
  itemEvent(out: string[], type: string, item: ItemState, fields?: Json): void {
    this.#render.send(out, type, fields === undefined ? { item_id: item.id, output_index: item.index } : { item_id: item.id, output_index: item.index, ...fields });
  }

  /** Ends a gateway item: output_item.done with the item as it is final. */
  finishGatewayItem(out: string[], item: ItemState, final: Json): void {
    item.final = final;
    this.#render.send(out, 'response.output_item.done', { output_index: item.index, item: final });
  }

  /** A server-side call's tool has answered (or failed): its item is done. */
  completeToolCall(out: string[], item: ItemState, result: ToolResult, approvalRequestId: string | null = null): void {
    item.awaitingTool = false;
    this.#render.send(out, result.ok ? 'response.mcp_call.completed' : 'response.mcp_call.failed', { item_id: item.id, output_index: item.index });
    const final = this.#routedItemJson(item, item.finalArguments ?? '', result.ok ? 'completed' : 'failed', {
      output: result.ok ? result.output : null,
      error: result.ok ? null : result.error,
    });
    if (approvalRequestId !== null) final['approval_request_id'] = approvalRequestId;
    this.finishGatewayItem(out, item, final);
  }

  /** The next vLLM call begins: its indices and ids are its own. */
  beginTurn(): void {
    this.#betweenTurns = false;
    this.#output.beginTurn();
  }

  /** Every item finished so far, in output order (what the next vLLM call is given back). */
  finishedItems(): Json[] {
    const finals: Json[] = [];
    for (const item of this.#output.items) if (item.final !== undefined) finals.push(item.final);
    return finals;
  }

  /**
   * Stores (through the hook) and then sends the terminal event and [DONE]: a promise of
   * them while the store writes; the lines themselves when there is nothing to store, so
   * that a stream with nothing to store ends without pausing vLLM's socket for a microtask.
   */
  #close(type: string, response: Json): Closing {
    this.#ended = true;
    const json = JSON.stringify(response);
    const terminal = (): string[] => [this.#render.responseEvent(type, json), DONE_LINE];
    let stored: Promise<void> | undefined;
    try {
      stored = this.#hooks.finish(response, json);
    } catch (error) {
      stored = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (stored === undefined) return terminal();
    this.#closing = stored.then(terminal, (error: unknown) => {
      // Never report as stored what was not: the client learns the response failed.
      this.#log().error({ err: error }, 'storing the response failed');
      const failure = error instanceof GatewayError ? error : new GatewayError('store_unavailable', 'The response could not be stored.');
      this.failure = failure;
      const failed = { ...response, status: 'failed', completed_at: null, error: responseError(failure.code, failure.message) };
      const tail = [this.#errorEvent(failure)];
      tail.push(this.#render.responseEvent('response.failed', JSON.stringify(failed)), DONE_LINE);
      return tail;
    });
    return this.#closing;
  }

  #errorEvent(error: GatewayError): string {
    return this.#render.error(error);
  }

  #failedResponse(error: GatewayError, out: string[]): Json {
    for (const item of this.#output.items) this.#finishItem(item, {}, 'incomplete', out);
    const { code, message } = toErrorObject(error);
    return normalizeResponse(this.#upstreamResponse, this.#facts, {
      status: 'failed',
      output: this.#output.finals(),
      error: { code, message },
      usage: null,
    });
  }

  #upstreamError(event: Json, out: string[]): Closing {
    // vLLM sends either OpenAI's nested form or a flat {type, code, message, param}.
    const nested = isObject(event['error']) ? event['error'] : event;
    const message = typeof nested['message'] === 'string' ? nested['message'] : 'The model server reported an error.';
    const code = typeof nested['code'] === 'string' ? nested['code'] : 'server_error';
    this.#ensureCreated(out);
    const output = this.#finalOutput([], 'failed', out);
    const type = typeof nested['type'] === 'string' && nested['type'] !== 'error' ? nested['type'] : 'server_error';
    out.push(this.#render.errorObject({ type, code, message, param: nested['param'] ?? null }));
    const failed = normalizeResponse(this.#upstreamResponse, this.#facts, {
      status: 'failed',
      output,
      error: { code, message },
      usage: null,
    });
    return this.#close('response.failed', failed);
  }

  #fail(error: GatewayError, emit: Emit): void | Promise<void> {
    this.failure = error;
    const out: string[] = [];
    this.#ensureCreated(out);
    const failed = this.#failedResponse(error, out);
    out.push(this.#errorEvent(error));
    const send = (tail: string[]): void => {
      out.push(...tail);
      emit(out);
    };
    const closing = this.#close('response.failed', failed);
    if (closing instanceof Promise) return closing.then(send);
    send(closing);
  }
}
