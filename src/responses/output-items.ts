// The stream normalizer's record of a response's output as it streams: each output item
// (the gateway's id, its index as the client sees it, vLLM's index and id it is found
// by) and each part of an item (its index, the delta texts seen so far, whether it is
// closed). What the client is sent is rendered elsewhere (event-renderer.ts).
import { itemIdPrefix, newId } from './ids.ts';
import type { Json } from './items.ts';

/** How many delta texts are kept one by one before they are joined into one string. */
const DELTAS_A_BLOCK = 32;

/**
 * A part's raw delta texts, kept until the part closes (its text is what the client saw).
 * Kept one string a delta, a long answer cost about 35 bytes a token (the string and its
 * slot) for the stream's whole life: 336 strings and 8.9 KB a stream, 30 s into 1,000
 * streams, against 60 strings and 3.0 KB kept in blocks (bench:heap --after 30). The
 * latest few are kept as they came; the rest are joined, 32 at a time.
 */
export class DeltaTexts {
  readonly #blocks: string[] = [];
  readonly #recent: string[] = [];

  push(raw: string): void {
    const recent = this.#recent;
    recent.push(raw);
    if (recent.length === DELTAS_A_BLOCK) {
      this.#blocks.push(recent.join(''));
      recent.length = 0;
    }
  }

  /** Every delta text so far, joined. */
  joined(): string {
    const recent = this.#recent.join('');
    return this.#blocks.length === 0 ? recent : this.#blocks.join('') + recent;
  }
}

export interface PartState {
  /** The part's index inside its item, as the client sees it. */
  readonly index: number;
  readonly type: string;
  /** Raw (JSON-escaped) delta texts, in order. */
  readonly raw: DeltaTexts;
  done: boolean;
  finalText: string | undefined;
}

/**
 * A function vLLM calls that stands for another tool: a server-side one (a call the
 * gateway runs, or a request for the client's approval: runs/agent-loop.ts), or a client
 * tool vLLM could not be offered as it is (a custom tool, a namespaced function:
 * client-tools.ts). The item is rendered as that tool's call.
 */
export type ToolRoute =
  | {
      readonly kind: 'mcp_call' | 'mcp_approval_request';
      readonly serverLabel: string;
      /** The tool's own name on its server. */
      readonly name: string;
    }
  | {
      readonly kind: 'custom_tool_call' | 'function_call';
      /** The tool's own name (without its namespace). */
      readonly name: string;
      readonly namespace: string | undefined;
    };

export interface ItemState {
  readonly id: string;
  readonly index: number;
  readonly type: string;
  readonly upstreamId: string | undefined;
  readonly callId: unknown;
  readonly name: unknown;
  readonly parts: PartState[];
  /** Upstream content_index -> the part. */
  readonly partsByUpstreamIndex: Map<number, PartState>;
  /** Function-call argument delta events held until the final arguments are known. */
  readonly heldArguments: string[];
  finalArguments: string | undefined;
  /** The item as sent in output_item.done. */
  final: Json | undefined;
  /** Set for a call of a server-side tool; rendered as its kind, not as a function_call. */
  readonly route: ToolRoute | undefined;
  /** A server-side call whose arguments are complete, waiting for its tool to run. */
  awaitingTool: boolean;
}

/** The field of a part that holds its text. */
export const TEXT_FIELD_OF_PART: Readonly<Record<string, string>> = { output_text: 'text', refusal: 'refusal', reasoning_text: 'text' };
/** The part a text delta event writes to, by the event's type. */
export const DELTA_PART_TYPE: Readonly<Record<string, string>> = {
  'response.output_text.delta': 'output_text',
  'response.refusal.delta': 'refusal',
  'response.reasoning_text.delta': 'reasoning_text',
};
/** The part a text done event closes, by the event's type. */
export const DONE_PART_TYPE: Readonly<Record<string, string>> = {
  'response.output_text.done': 'output_text',
  'response.refusal.done': 'refusal',
  'response.reasoning_text.done': 'reasoning_text',
};
export const DELTA_TYPE_OF_PART: Readonly<Record<string, string>> = {
  output_text: 'response.output_text.delta',
  refusal: 'response.refusal.delta',
  reasoning_text: 'response.reasoning_text.delta',
};
export const DONE_TYPE_OF_PART: Readonly<Record<string, string>> = {
  output_text: 'response.output_text.done',
  refusal: 'response.refusal.done',
  reasoning_text: 'response.reasoning_text.done',
};

export function emptyPart(type: string): Json {
  if (type === 'output_text') return { type, annotations: [], logprobs: [], text: '' };
  if (type === 'refusal') return { type, refusal: '' };
  return { type, text: '' };
}

/** A part as it is final: its type's empty shape with the text the client saw. */
export function finishedPart(part: PartState): Json {
  const json = emptyPart(part.type);
  json[TEXT_FIELD_OF_PART[part.type] ?? 'text'] = part.finalText ?? '';
  return json;
}

/** Reasoning text lives in reasoning items, every other part in messages. */
export function itemTypeOfPart(partType: string): string {
  return partType === 'reasoning_text' ? 'reasoning' : 'message';
}

export class OutputItems {
  /** In the order the client sees them (index = output_index). */
  readonly items: ItemState[] = [];
  readonly #byUpstreamIndex = new Map<number, ItemState>();
  readonly #byUpstreamId = new Map<string, ItemState>();

  /** A new item with the gateway's id (and a call_id for a function call without one). */
  add(type: string, upstreamId: string | undefined, upstreamIndex: number | undefined, raw: Json, route?: ToolRoute): ItemState {
    const item: ItemState = {
      id: newId(itemIdPrefix(route?.kind ?? type)),
      index: this.items.length,
      type,
      upstreamId,
      callId: raw['call_id'] ?? (type === 'function_call' ? `call_${newId('').slice(0, 24)}` : undefined),
      name: raw['name'],
      parts: [],
      partsByUpstreamIndex: new Map(),
      heldArguments: [],
      finalArguments: undefined,
      final: undefined,
      route,
      awaitingTool: false,
    };
    this.items.push(item);
    if (upstreamIndex !== undefined) this.#byUpstreamIndex.set(upstreamIndex, item);
    if (upstreamId !== undefined) this.#byUpstreamId.set(upstreamId, item);
    return item;
  }

  /** The item an event refers to: by vLLM's output_index, else its item_id. */
  find(outputIndex: number | undefined, itemId: string | undefined): ItemState | undefined {
    return (
      (outputIndex === undefined ? undefined : this.#byUpstreamIndex.get(outputIndex)) ??
      (itemId === undefined ? undefined : this.#byUpstreamId.get(itemId))
    );
  }

  /** A new vLLM call begins (a server-side tool loop): its indices and ids start afresh. */
  beginTurn(): void {
    this.#byUpstreamIndex.clear();
    this.#byUpstreamId.clear();
  }

  atUpstreamIndex(upstreamIndex: number): ItemState | undefined {
    return this.#byUpstreamIndex.get(upstreamIndex);
  }

  addPart(item: ItemState, type: string, upstreamIndex: number | undefined): PartState {
    const part: PartState = { index: item.parts.length, type, raw: new DeltaTexts(), done: false, finalText: undefined };
    item.parts.push(part);
    item.partsByUpstreamIndex.set(upstreamIndex ?? part.index, part);
    return part;
  }

  /** Every item as it was finished (call once all are). */
  finals(): Json[] {
    return this.items.map((item) => item.final as Json);
  }
}
