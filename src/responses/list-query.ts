// Query parameters of OpenAI's list endpoints: limit (1-100, default 20), order
// (asc | desc, default desc), after and before (item ids).
import { GatewayError } from '../errors.ts';
import type { PageQuery } from '../store/store.ts';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

export function parseListQuery(search: URLSearchParams): PageQuery {
  const rawLimit = search.get('limit');
  let limit = DEFAULT_LIMIT;
  if (rawLimit !== null) {
    limit = /^\d+$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw invalid(`Invalid 'limit': '${rawLimit.slice(0, 20)}'. Expected an integer from 1 to ${MAX_LIMIT}.`, 'limit');
    }
  }
  const rawOrder = search.get('order') ?? 'desc';
  if (rawOrder !== 'asc' && rawOrder !== 'desc') {
    throw invalid(`Invalid 'order': '${rawOrder.slice(0, 20)}'. Expected 'asc' or 'desc'.`, 'order');
  }
  const after = search.get('after') ?? undefined;
  const before = search.get('before') ?? undefined;
  if (after === '') throw invalid("Invalid 'after': expected an item id.", 'after');
  if (before === '') throw invalid("Invalid 'before': expected an item id.", 'before');
  return { limit, order: rawOrder, after, before };
}

/** OpenAI's list object, built from stored JSON texts without parsing them. */
export function renderList(items: readonly { id: string; payload: string }[], hasMore: boolean): string {
  const first = items[0]?.id;
  const last = items[items.length - 1]?.id;
  return (
    `{"object":"list","data":[${items.map((item) => item.payload).join(',')}],` +
    `"first_id":${first === undefined ? 'null' : JSON.stringify(first)},` +
    `"last_id":${last === undefined ? 'null' : JSON.stringify(last)},"has_more":${String(hasMore)}}`
  );
}

export function cursorNotFound(query: PageQuery): GatewayError {
  const param = query.after !== undefined ? 'after' : 'before';
  return new GatewayError('invalid_request', `Invalid '${param}': no item with that id in this list.`, { param });
}
