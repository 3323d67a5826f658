// Which replica takes a request: the least busy healthy one, weighted by slow start, unless
// the request belongs to a chain whose replica holds its prefix in vLLM's cache. Then that
// replica, as long as it is healthy and not busier than LOAD_BOUND times the average (or
// LOAD_HEADROOM requests over it)
// (consistent hashing with bounded loads: Mirrokni, Thorup, Zadimoghaddam, 2018), so that
// affinity never piles a hot chain's load onto one replica. No state: the replica set
// hands in what it knows.

/** What routing reads of one replica. */
export interface RouteCandidate {
  readonly id: string;
  readonly up: boolean;
  readonly inFlight: number;
  /** Its share of new requests: 1, or less during slow start. */
  readonly weight: number;
}

/** A replica may take up to this multiple of the average load and still keep its chains. */
export const LOAD_BOUND = 1.25;
/** ...or this many requests over the average, whichever is more: at a low load, one
 * request more than the others is no reason to lose a chain's cache (vLLM batches dozens). */
export const LOAD_HEADROOM = 4;

/** How the chosen replica relates to the request's affinity. */
export type AffinityOutcome = 'kept' | 'moved' | 'none';

export interface RouteChoice {
  readonly index: number;
  readonly outcome: AffinityOutcome;
}

/** FNV-1a, 32 bits: a fast stable hash (the same key gives the same replica in every gateway). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The candidates in the order a key prefers them (rendezvous hashing: each key ranks every
 * replica by hash(key, replica), so removing a replica moves only its own keys).
 */
export function rendezvousOrder(key: string, candidates: readonly RouteCandidate[]): number[] {
  const scores = candidates.map((candidate) => hash(`${key}\u0000${candidate.id}`));
  return candidates.map((_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}

export class ReplicaRouter {
  /** Where ties start, turning, so equal replicas share requests evenly. */
  #turn = 0;

  /**
   * The replica for a request. `preferred`: the id of the replica that served its chain;
   * `key`: a chain key hashed to one when none is stored. `exclude`: indices already tried.
   * With no healthy replica left, the least busy of the others is tried (it may be back).
   */
  choose(candidates: readonly RouteCandidate[], preferred: string | undefined, key: string | undefined, exclude?: ReadonlySet<number>): RouteChoice | undefined {
    let usable = candidates.map((_, i) => i).filter((i) => candidates[i]?.up === true && exclude?.has(i) !== true);
    if (usable.length === 0) usable = candidates.map((_, i) => i).filter((i) => exclude?.has(i) !== true);
    if (usable.length === 0) return undefined;
    const wanted = preferred !== undefined || key !== undefined;
    if (wanted) {
      const bound = this.#bound(candidates, usable);
      const fits = (i: number): boolean => usable.includes(i) && (candidates[i] as RouteCandidate).inFlight + 1 <= bound;
      const stored = preferred === undefined ? -1 : candidates.findIndex((candidate) => candidate.id === preferred);
      if (stored !== -1) {
        if (fits(stored)) return { index: stored, outcome: 'kept' };
      } else if (key !== undefined) {
        const order = rendezvousOrder(key, candidates);
        if (fits(order[0] as number)) return { index: order[0] as number, outcome: 'kept' };
        // The key's next replicas in its own order: another gateway picks the same one.
        for (const i of order.slice(1)) if (fits(i)) return { index: i, outcome: 'moved' };
      }
    }
    return { index: this.#leastBusy(candidates, usable), outcome: wanted ? 'moved' : 'none' };
  }

  /** The most requests a replica may have in flight, the new one included, and keep its chains. */
  #bound(candidates: readonly RouteCandidate[], usable: readonly number[]): number {
    let total = 1;
    for (const i of usable) total += (candidates[i] as RouteCandidate).inFlight;
    const average = total / usable.length;
    return Math.max(Math.ceil(LOAD_BOUND * average), Math.ceil(average) + LOAD_HEADROOM);
  }

  #leastBusy(candidates: readonly RouteCandidate[], usable: readonly number[]): number {
    const start = this.#turn++ % usable.length;
    let best = usable[start] as number;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let k = 0; k < usable.length; k++) {
      const i = usable[(start + k) % usable.length] as number;
      const candidate = candidates[i] as RouteCandidate;
      const load = (candidate.inFlight + 1) / candidate.weight;
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    return best;
  }
}
