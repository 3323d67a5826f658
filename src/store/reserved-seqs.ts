// Item seqs this process took from the database's sequence ahead of the turns that use
// them (PostgreSQL). A turn whose items' seqs are known before it writes anything sends
// its items, its response and the checkpoint that names those seqs in one batch; a turn
// that had its seqs given by the insert (RETURNING) waits a round trip for them first.
// Seqs only have to be unique and never reused: contexts and conversations hold their own
// order, and nothing compares seqs, so seqs reserved by several processes interleave and
// the few left when a process ends are simply never used.

export class ReservedSeqs {
  #seqs: number[] = [];
  /** The first of #seqs not taken yet. */
  #next = 0;

  get available(): number {
    return this.#seqs.length - this.#next;
  }

  /** `count` seqs, each given once, or undefined when fewer are left. */
  take(count: number): number[] | undefined {
    if (count > this.available) return undefined;
    const taken = this.#seqs.slice(this.#next, this.#next + count);
    this.#next += count;
    return taken;
  }

  add(seqs: readonly number[]): void {
    this.#seqs = [...this.#seqs.slice(this.#next), ...seqs];
    this.#next = 0;
  }
}
