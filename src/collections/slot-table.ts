// Entries that come and go at a high rate (a request in flight, a call waiting for its
// thread's reply), each under a number this table hands out: the index of its slot.
//
// Why not a Map or a Set: V8 rehashes a Map's table into a new one once deleted entries
// fill it, and keeps the obsolete table's entries as they were (iterators still walk
// it). Once the live table has been promoted, every new table is made in the old
// generation too, and each obsolete one, dead but uncollected until the next mark-compact,
// keeps the entries it held alive through every scavenge: for a Set of requests in
// flight, every request's whole graph (measured: 3 MB promoted a scavenge at c=32 for
// JSON, against 60 KB without the Set; bench/README.md, "Garbage"). Here a removed entry's
// slot is emptied in place, and nothing else ever points at the entry.
export class SlotTable<V> {
  readonly #slots: (V | undefined)[] = [];
  /** Emptied slots, reused before the array grows. */
  readonly #free: number[] = [];

  /** Stores `value`; returns its slot, the key to take it out by. */
  add(value: V): number {
    const slot = this.#free.pop();
    if (slot === undefined) return this.#slots.push(value) - 1;
    this.#slots[slot] = value;
    return slot;
  }

  /** Removes and returns the slot's value (undefined when the slot is empty, or for -1:
   * what was never added). */
  take(slot: number): V | undefined {
    if (slot < 0) return undefined;
    const value = this.#slots[slot];
    if (value === undefined) return undefined;
    this.#slots[slot] = undefined;
    this.#free.push(slot);
    return value;
  }

  /** The values, as they are now: removing or adding while walking them is safe. */
  values(): V[] {
    const values: V[] = [];
    for (const value of this.#slots) if (value !== undefined) values.push(value);
    return values;
  }
}
