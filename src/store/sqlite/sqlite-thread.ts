// The SQLite store's thread: the one SqlStore over better-sqlite3, answering the calls
// that SqliteThreadStore posts. better-sqlite3 is synchronous; here its work (saving a
// turn of thousands of items, reading a long history) never holds the event loop that
// serves requests and streams.
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorObject } from '../../errors.ts';
import { SqlStore } from '../sql-store.ts';
import type { Store, StoreOptions } from '../store.ts';
import { SqliteBackend } from './sqlite-backend.ts';

export interface SqliteThreadData {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly options: StoreOptions;
}

export interface StoreCall {
  readonly id: number;
  readonly method: keyof Store;
  readonly args: readonly unknown[];
}

export type StoreReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string; readonly cause: string };

function failure(id: number, error: unknown): StoreReply {
  const { code, message } = toErrorObject(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
  return { id, ok: false, code, message, cause };
}

/** A history's bytes move to the event loop's thread instead of being copied (History.upstream). */
function transferable(value: unknown): ArrayBuffer[] {
  const upstream = (value as { upstream?: unknown } | null | undefined)?.upstream;
  if (!(upstream instanceof Uint8Array) || upstream.byteLength === 0) return [];
  const { buffer } = upstream;
  // Only a buffer of its own: a slice of a shared pool must be copied.
  return buffer instanceof ArrayBuffer && upstream.byteOffset === 0 && upstream.byteLength === buffer.byteLength ? [buffer] : [];
}

const data = workerData as SqliteThreadData;
let store: Store | undefined;
let opening: unknown;
try {
  store = new SqlStore(new SqliteBackend(data.path, data.busyTimeoutMs), data.options);
} catch (error) {
  // Every call answers with why the store could not be opened (migrate, at startup, first).
  opening = error;
}

parentPort?.on('message', (call: StoreCall) => {
  if (store === undefined) {
    parentPort?.postMessage(failure(call.id, opening));
    return;
  }
  const opened = store;
  const invoke = (...args: unknown[]): Promise<unknown> => (opened[call.method] as (...a: unknown[]) => Promise<unknown>).apply(opened, args);
  invoke(...call.args).then(
    (value) => parentPort?.postMessage({ id: call.id, ok: true, value } satisfies StoreReply, transferable(value)),
    (error: unknown) => parentPort?.postMessage(failure(call.id, error)),
  );
});
