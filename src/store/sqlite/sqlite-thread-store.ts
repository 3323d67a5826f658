// The SQLite store as the gateway uses it: the store lives on a thread of its own
// (sqlite-thread.ts) and every call is a message. A call costs a hop (tens of
// microseconds); in exchange a turn of 10,000 items (about 70 ms of SQLite work) or a
// 10,000-item history never stalls the event loop, which at --max-input-items' default
// is what keeps the gateway answering while such requests run (docs/reliability.md).
// Calls run in the order they are made, one at a time, as they would on one connection.
import type { Worker } from 'node:worker_threads';
import { siblingModule, startThread } from '../../threads/start-thread.ts';
import { GatewayError, type ErrorCode } from '../../errors.ts';
import type { Store, StoreOptions } from '../store.ts';
import type { SqliteThreadData, StoreCall, StoreReply } from './sqlite-thread.ts';
import { BoxedMap } from '../../collections/boxed-map.ts';

const THREAD_MODULE = siblingModule(import.meta.url, 'sqlite-thread');

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** A history's bytes arrive as a Uint8Array (structured clone drops Buffer's prototype). */
function asBuffers(value: unknown): unknown {
  const upstream = (value as { upstream?: unknown } | null | undefined)?.upstream;
  if (!(upstream instanceof Uint8Array) || Buffer.isBuffer(upstream)) return value;
  return { ...(value as object), upstream: Buffer.from(upstream.buffer, upstream.byteOffset, upstream.byteLength) };
}

export class SqliteThreadStore implements Store {
  readonly #worker: Worker;
  // Not a Map: see BoxedMap (each pending call holds its request's continuation).
  readonly #pending = new BoxedMap<number, Pending>();
  #nextId = 0;
  #gone: Error | undefined;

  constructor(path: string, busyTimeoutMs: number, options: StoreOptions) {
    const workerData: SqliteThreadData = { path, busyTimeoutMs, options };
    this.#worker = startThread(THREAD_MODULE, { workerData });
    this.#worker.on('message', (reply: StoreReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (pending === undefined) return;
      if (reply.ok) pending.resolve(asBuffers(reply.value));
      else pending.reject(new GatewayError(reply.code as ErrorCode, reply.message, { cause: new Error(reply.cause) }));
    });
    const fail = (error: Error): void => {
      this.#gone = error;
      for (const pending of this.#pending.values()) pending.reject(this.#failure());
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`the SQLite thread exited (${code})`)));
    // Idle, the thread does not keep the process alive.
    this.#worker.unref();
  }

  #failure(): GatewayError {
    return new GatewayError('store_unavailable', 'The response store is unavailable; try again shortly.', { cause: this.#gone });
  }

  #call<T>(method: keyof Store, ...args: unknown[]): Promise<T> {
    if (this.#gone !== undefined) return Promise.reject(this.#failure());
    const id = this.#nextId++;
    const call: StoreCall = { id, method, args };
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      // While calls are pending, the thread holds the process (as a socket would).
      if (this.#pending.size === 1) this.#worker.ref();
      this.#worker.postMessage(call);
    }).finally(() => {
      if (this.#pending.size === 0) this.#worker.unref();
    });
  }

  migrate: Store['migrate'] = () => this.#call('migrate');
  loadResponseContext: Store['loadResponseContext'] = (...args) => this.#call('loadResponseContext', ...args);
  getResponseBody: Store['getResponseBody'] = (...args) => this.#call('getResponseBody', ...args);
  listInputItems: Store['listInputItems'] = (...args) => this.#call('listInputItems', ...args);
  saveResponse: Store['saveResponse'] = (...args) => this.#call('saveResponse', ...args);
  deleteResponse: Store['deleteResponse'] = (...args) => this.#call('deleteResponse', ...args);
  getItemsById: Store['getItemsById'] = (...args) => this.#call('getItemsById', ...args);
  getHistoryItemsOfType: Store['getHistoryItemsOfType'] = (...args) => this.#call('getHistoryItemsOfType', ...args);
  createConversation: Store['createConversation'] = (...args) => this.#call('createConversation', ...args);
  getConversation: Store['getConversation'] = (...args) => this.#call('getConversation', ...args);
  updateConversation: Store['updateConversation'] = (...args) => this.#call('updateConversation', ...args);
  deleteConversation: Store['deleteConversation'] = (...args) => this.#call('deleteConversation', ...args);
  loadConversationItems: Store['loadConversationItems'] = (...args) => this.#call('loadConversationItems', ...args);
  listConversationItems: Store['listConversationItems'] = (...args) => this.#call('listConversationItems', ...args);
  addConversationItems: Store['addConversationItems'] = (...args) => this.#call('addConversationItems', ...args);
  getConversationItem: Store['getConversationItem'] = (...args) => this.#call('getConversationItem', ...args);
  deleteConversationItem: Store['deleteConversationItem'] = (...args) => this.#call('deleteConversationItem', ...args);
  expire: Store['expire'] = (...args) => this.#call('expire', ...args);
  ping: Store['ping'] = () => this.#call('ping');
  createRun: Store['createRun'] = (...args) => this.#call('createRun', ...args);
  appendRunEvents: Store['appendRunEvents'] = (...args) => this.#call('appendRunEvents', ...args);
  getRun: Store['getRun'] = (...args) => this.#call('getRun', ...args);
  readRunEvents: Store['readRunEvents'] = (...args) => this.#call('readRunEvents', ...args);
  requestRunCancel: Store['requestRunCancel'] = (...args) => this.#call('requestRunCancel', ...args);
  runsToCancel: Store['runsToCancel'] = (...args) => this.#call('runsToCancel', ...args);
  runOwners: Store['runOwners'] = () => this.#call('runOwners');
  heartbeatRuns: Store['heartbeatRuns'] = (...args) => this.#call('heartbeatRuns', ...args);
  claimStaleRuns: Store['claimStaleRuns'] = (...args) => this.#call('claimStaleRuns', ...args);
  expireRuns: Store['expireRuns'] = (...args) => this.#call('expireRuns', ...args);
  watchRuns: Store['watchRuns'] = () => Promise.resolve(undefined);

  async close(): Promise<void> {
    if (this.#gone === undefined) await this.#call('close').catch(() => undefined);
    await this.#worker.terminate();
  }
}
