// What the store's tests and benchmarks save: items and turns with ids unique across runs (a PostgreSQL
// test schema may outlive a run that failed), the rest the least a record needs.
import type { NewItem, SaveResponse } from '../src/store/store.ts';

export const TENANT = 'default';

let itemCounter = 0;
export function item(type = 'message', text = `text ${itemCounter}`): NewItem {
  const id = `${type === 'message' ? 'msg' : 'fc'}_${(itemCounter++).toString(16).padStart(12, '0')}${Math.random().toString(16).slice(2, 10)}`;
  return { id, type, payload: JSON.stringify({ id, type, text }), upstream: JSON.stringify({ type, text }) };
}

/** `count` new items, each as item() makes them. */
export function items(count: number): NewItem[] {
  return Array.from({ length: count }, () => item());
}

let responseCounter = 0;
/** A completed, stored turn of one input item and one output item, unless `overrides` say otherwise. */
export function turn(overrides: Partial<SaveResponse> = {}): SaveResponse {
  const id = `resp_${(responseCounter++).toString(16).padStart(8, '0')}${Math.random().toString(16).slice(2, 10)}`;
  return {
    tenant: TENANT,
    id,
    createdAt: Date.now(),
    status: 'completed',
    model: 'm',
    body: JSON.stringify({ id, object: 'response', status: 'completed' }),
    previousResponseId: null,
    conversationId: null,
    historySeqs: [],
    inputItems: [item()],
    outputItems: [item()],
    storeResponse: true,
    ...overrides,
  };
}
