// A running response as it stands, rebuilt from its event log: what GET /v1/responses/{id}
// answers while a background response runs (on any process sharing the store), and the
// output a run keeps when its process died. The events are the normalized ones, so the
// snapshot is what a client that read the stream so far would have assembled.
import type { EventRenderer } from './event-renderer.ts';
import type { Json } from './items.ts';
import { DELTA_PART_TYPE, DONE_PART_TYPE, DONE_TYPE_OF_PART, TEXT_FIELD_OF_PART } from './output-items.ts';
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/** Why a dead run's tool list or call has no result. */
const INTERRUPTED = 'The gateway process running this response stopped before it finished.';

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The JSON of one logged event (`event: ...\ndata: {...}\n\n`), or undefined. */
export function eventData(event: string): Json | undefined {
  const start = event.indexOf('data: ');
  if (start === -1) return undefined;
  try {
    const value: unknown = JSON.parse(event.slice(start + 6));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export interface Snapshot {
  readonly response: Json;
  /** The log ends with a terminal event: `response` is final. */
  readonly terminal: boolean;
  /** `${output_index}:${content_index}` of the text (or arguments: `${output_index}:args`),
   * parts (`...:part`) and items (`${output_index}:item`) whose done events were sent. */
  readonly closed: ReadonlySet<string>;
}

/**
 * The events that close what a snapshot left open (an interrupted run): each open item's
 * text.done, content_part.done and output_item.done, its status incomplete, as the
 * normalizer closes a stream that fails, rendered where the log left off. Returns them
 * and the items as closed.
 */
export function closingEvents(snapshot: Snapshot, render: EventRenderer): { events: string[]; output: Json[] } {
  const events: string[] = [];
  const send = (type: string, fields: Json): void => render.send(events, type, fields);
  const output = (snapshot.response['output'] as Json[]).map((item, index) => {
    if (snapshot.closed.has(`${index}:item`)) return item;
    // Items without a status (a tool list, an approval request) keep having none.
    const closed: Json = 'status' in item ? { ...item, status: 'incomplete' } : { ...item };
    const id = item['id'];
    if (item['type'] === 'mcp_list_tools') {
      send('response.mcp_list_tools.failed', { item_id: id, output_index: index });
      closed['error'] = INTERRUPTED;
    }
    if (item['type'] === 'mcp_call' && typeof item['output'] !== 'string') closed['error'] = INTERRUPTED;
    if (Array.isArray(item['content'])) {
      (item['content'] as Json[]).forEach((part, contentIndex) => {
        const field = TEXT_FIELD_OF_PART[String(part['type'])] ?? 'text';
        const doneType = DONE_TYPE_OF_PART[String(part['type'])];
        if (doneType !== undefined && !snapshot.closed.has(`${index}:${contentIndex}`)) {
          send(doneType, {
            item_id: id,
            output_index: index,
            content_index: contentIndex,
            [field]: part[field] ?? '',
            ...(part['type'] === 'output_text' ? { logprobs: [] } : {}),
          });
        }
        if (!snapshot.closed.has(`${index}:${contentIndex}:part`)) {
          send('response.content_part.done', { item_id: id, output_index: index, content_index: contentIndex, part });
        }
      });
    }
    if (item['type'] === 'function_call' && !snapshot.closed.has(`${index}:args`)) {
      send('response.function_call_arguments.done', { item_id: id, output_index: index, name: item['name'], arguments: item['arguments'] ?? '' });
    }
    send('response.output_item.done', { output_index: index, item: closed });
    return closed;
  });
  return { events, output };
}

/**
 * Replays `events` over `base` (the response object the run began with). Items still open
 * are given as far as they got, with status in_progress.
 */
export function snapshotFromEvents(base: Json, events: Iterable<string>): Snapshot {
  let response: Json = { ...base };
  const output: Json[] = [];
  const closed = new Set<string>();
  for (const raw of events) {
    const event = eventData(raw);
    if (event === undefined) continue;
    const type = event['type'];
    if (typeof type !== 'string') continue;
    if (TERMINAL.has(type) && isObject(event['response'])) return { response: event['response'], terminal: true, closed };
    const index = typeof event['output_index'] === 'number' ? event['output_index'] : -1;
    const item = output[index];
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
      case 'response.queued':
        if (isObject(event['response'])) response = { ...event['response'] };
        break;
      case 'response.output_item.added':
      case 'response.output_item.done':
        if (index >= 0 && isObject(event['item'])) output[index] = structuredClone(event['item']);
        if (type === 'response.output_item.done') closed.add(`${index}:item`);
        break;
      case 'response.function_call_arguments.done':
        closed.add(`${index}:args`);
        break;
      case 'response.content_part.added':
      case 'response.content_part.done':
        if (type === 'response.content_part.done') closed.add(`${index}:${Number(event['content_index'])}:part`);
        if (item !== undefined && Array.isArray(item['content']) && isObject(event['part'])) {
          (item['content'] as unknown[])[Number(event['content_index'])] = { ...event['part'] };
        }
        break;
      case 'response.function_call_arguments.delta':
      case 'response.mcp_call_arguments.delta':
        if (item !== undefined && typeof event['delta'] === 'string') item['arguments'] = `${textOf(item['arguments'])}${event['delta']}`;
        break;
      default: {
        if (DONE_PART_TYPE[type] !== undefined) {
          closed.add(`${index}:${Number(event['content_index'])}`);
          break;
        }
        const partType = DELTA_PART_TYPE[type];
        const field = partType === undefined ? undefined : TEXT_FIELD_OF_PART[partType];
        if (field === undefined || item === undefined || !Array.isArray(item['content']) || typeof event['delta'] !== 'string') break;
        const part = (item['content'] as unknown[])[Number(event['content_index'])];
        if (isObject(part)) part[field] = `${textOf(part[field])}${event['delta']}`;
      }
    }
  }
  response['output'] = output.filter((item) => item !== undefined);
  return { response, terminal: false, closed };
}
