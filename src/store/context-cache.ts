// The contexts of responses this process stored or read lately, so that continuing one
// reads only what may have changed since: whether the response is still live (deleted,
// expired) and whether an item of its context may have been removed (the store's count of
// item removals moved). A context never changes once its response is stored (a checkpoint
// is written once, items are never updated, and seqs are never reused: SQLite's
// AUTOINCREMENT, PostgreSQL's sequence), so a context whose response is live and whose
// items are all present is the one the store would read. That check is one row, where
// reading the context joins and copies every item's upstream form (on PostgreSQL, two
// round trips; bench/README.md, "A continuation's context, kept").
import { BoxedMap } from '../collections/boxed-map.ts';

/** A response's context as the store would read it (History without `tooLong`). */
export interface CachedContext {
  readonly seqs: readonly number[];
  /** The items' upstream forms, joined with commas (History.upstream). */
  readonly upstream: Buffer;
  readonly replica: string | null;
  /** The store's count of item removals when this context was last known whole: while the
   * count reads the same, no item of it can be gone (sql-store.ts, loadResponseContext). */
  removalsAt: number;
}

/** What an entry costs beyond its bytes: its key, the seqs array's slots, the objects. */
const ENTRY_OVERHEAD_BYTES = 200;

/** Bytes an entry counts against the budget: its upstream bytes, its seqs, its key. */
function costOf(items: number, upstreamBytes: number, keyLength: number): number {
  return ENTRY_OVERHEAD_BYTES + keyLength + upstreamBytes + items * 8;
}

interface Entry {
  readonly context: CachedContext;
  /** Bytes counted against the budget. */
  readonly cost: number;
}

/** One key for a tenant's response, whatever either holds: the tenant's length first. */
function keyOf(tenant: string, responseId: string): string {
  return `${tenant.length}:${tenant}${responseId}`;
}

/** The most of the budget one entry may take: one long context does not push out all others,
 * and what a turn copies to keep its context stays bounded. */
const ENTRY_SHARE_OF_BUDGET = 1 / 8;

/**
 * Least recently used first out, within a budget of bytes. Keys join tenant and response
 * id: no tenant reaches another's entry, as no query reaches another's rows.
 */
export class ContextCache {
  readonly #entries = new BoxedMap<string, Entry>();
  readonly #budgetBytes: number;
  #bytes = 0;

  /** A budget of 0 keeps nothing. */
  constructor(budgetBytes: number) {
    this.#budgetBytes = budgetBytes;
  }

  /** Whether a context of this many items and upstream bytes would be kept. */
  admits(items: number, upstreamBytes: number): boolean {
    return costOf(items, upstreamBytes, 0) <= this.#budgetBytes * ENTRY_SHARE_OF_BUDGET;
  }

  /** The entry, made the most recently used. */
  get(tenant: string, responseId: string): CachedContext | undefined {
    const key = keyOf(tenant, responseId);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.context;
  }

  /** The entry, leaving the order as it is. */
  peek(tenant: string, responseId: string): CachedContext | undefined {
    return this.#entries.get(keyOf(tenant, responseId))?.context;
  }

  /** Keeps the context, unless it is too long; returns it as kept (its bytes may be a copy). */
  set(tenant: string, responseId: string, context: CachedContext): CachedContext | undefined {
    const key = keyOf(tenant, responseId);
    this.#remove(key);
    if (!this.admits(context.seqs.length, context.upstream.length)) return undefined;
    const cost = costOf(context.seqs.length, context.upstream.length, key.length);
    const kept = { seqs: context.seqs, upstream: ownBytes(context.upstream), replica: context.replica, removalsAt: context.removalsAt };
    this.#entries.set(key, { context: kept, cost });
    this.#bytes += cost;
    while (this.#bytes > this.#budgetBytes) {
      const oldest = this.#entries.oldestKey();
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
    return kept;
  }

  delete(tenant: string, responseId: string): void {
    this.#remove(keyOf(tenant, responseId));
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.cost;
  }

  /** Bytes held now, by the budget's count. */
  get bytes(): number {
    return this.#bytes;
  }
}

/**
 * The bytes in memory of their own. A small Buffer is a slice of Node's shared 8 KiB pool,
 * and keeping it would keep the whole pool chunk: a cache counting 200 bytes would hold 8 KiB.
 */
function ownBytes(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}
