// A Map for entries that come and go under keys (a run's id, the number of a call waiting
// for its thread's reply).
// Each value sits in a box that is emptied when its entry is deleted: V8 keeps an
// obsolete table's entries after rehashing a Map, and an obsolete table in the old
// generation keeps them alive until the next mark-compact (see slot-table.ts). What it
// keeps here is the emptied box, not the value.
interface Box<V> {
  value: V | undefined;
}

export class BoxedMap<K, V> {
  readonly #entries = new Map<K, Box<V>>();

  get(key: K): V | undefined {
    return this.#entries.get(key)?.value;
  }

  set(key: K, value: V): void {
    const box = this.#entries.get(key);
    if (box !== undefined) box.value = value;
    else this.#entries.set(key, { value });
  }

  delete(key: K): boolean {
    const box = this.#entries.get(key);
    if (box === undefined) return false;
    box.value = undefined;
    return this.#entries.delete(key);
  }

  /** The key set longest ago (a key set again moves to the end only if deleted first). */
  oldestKey(): K | undefined {
    for (const key of this.#entries.keys()) return key;
    return undefined;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The values, as they are now: deleting or adding while walking them is safe. */
  values(): V[] {
    const values: V[] = [];
    for (const box of this.#entries.values()) values.push(box.value as V);
    return values;
  }

  /** Empties every box, then the map. */
  clear(): void {
    for (const box of this.#entries.values()) box.value = undefined;
    this.#entries.clear();
  }
}
