// A token bucket: `capacity` tokens, refilled continuously at capacity per minute. This
// is how OpenAI describes its own limits (a per-minute limit is replenished as the minute
// goes, not reset at its end), so a client that paces itself never meets a wall.
//
// The level may go below zero: tokens of a response are known only once it is done, and
// are taken then whatever is left. The debt is paid back by the refill before anything
// more is admitted.

const MS_PER_MINUTE = 60_000;

export class TokenBucket {
  readonly capacity: number;
  readonly #perMs: number;
  #level: number;
  #at: number;

  constructor(perMinute: number, now: number) {
    this.capacity = perMinute;
    this.#perMs = perMinute / MS_PER_MINUTE;
    this.#level = perMinute;
    this.#at = now;
  }

  /** What is left now (may be negative: a debt). */
  level(now: number): number {
    if (now > this.#at) {
      this.#level = Math.min(this.capacity, this.#level + (now - this.#at) * this.#perMs);
      this.#at = now;
    }
    return this.#level;
  }

  /** Takes `amount` if that many are left; false (nothing taken) otherwise. */
  tryTake(amount: number, now: number): boolean {
    if (this.level(now) < amount) return false;
    this.#level -= amount;
    return true;
  }

  /** Takes `amount` whatever is left (usage known after the fact). */
  take(amount: number, now: number): void {
    this.level(now);
    this.#level -= amount;
  }

  /** Milliseconds until `amount` is left (0 when it already is). */
  msUntil(amount: number, now: number): number {
    const missing = amount - this.level(now);
    return missing <= 0 ? 0 : Math.ceil(missing / this.#perMs);
  }

  /** Milliseconds until the bucket is full again: OpenAI's x-ratelimit-reset-*. */
  msUntilFull(now: number): number {
    return this.msUntil(this.capacity, now);
  }
}
