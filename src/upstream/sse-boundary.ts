// Finds where server-sent events end, across chunk borders, without parsing them.
//
// An SSE event ends at a blank line (WHATWG HTML §9.2.6). vLLM writes the `event:` line,
// the `data:` line and the blank line as three separate chunks, so an event's end is often
// a lone "\n" chunk after a chunk that ended in "\n". Line ends are LF or CRLF; a bare CR
// line end (allowed by the spec, used by no server we know) is not recognised.

const LF = 0x0a;
const CR = 0x0d;
// Buffer needles, made once: a string needle is encoded again on every search.
const LF_LF = Buffer.from('\n\n');
const LF_CR_LF = Buffer.from('\n\r\n');

export class SseBoundary {
  /** The last two bytes seen, most recent last; 0 when none. */
  #prev1 = 0;
  #prev2 = 0;
  #sawCr = false;

  /**
   * Feed the next chunk; returns the offset just past the last event end inside it,
   * or -1 when no event ends in this chunk.
   */
  push(chunk: Buffer): number {
    const length = chunk.length;
    if (length === 0) return -1;
    const last = chunk[length - 1];
    // The common chunk: whole events, the last one's blank line last. Two bytes read in
    // JavaScript instead of a search (a call into C++ costs more than the bytes it reads).
    if (last === LF && chunk[length - 2] === LF) {
      this.#prev2 = LF;
      this.#prev1 = LF;
      return length;
    }
    let end = -1;
    // An event ending inside the chunk: "\n\n" or "\n\r\n".
    const lfLf = length >= 2 ? chunk.lastIndexOf(LF_LF) : -1;
    if (lfLf !== -1) end = lfLf + 2;
    // CRLF streams are rare: look for their event ends once a chunk has shown a CR at a
    // line end (checked in O(1) at the chunk's end). Until then a CRLF event end inside
    // the first chunk is found with the next one: late by a chunk, never lost.
    if (!this.#sawCr && (last === CR || (last === LF && chunk[length - 2] === CR))) this.#sawCr = true;
    if (this.#sawCr && end !== length) {
      const lfCrLf = chunk.lastIndexOf(LF_CR_LF);
      if (lfCrLf !== -1 && lfCrLf + 3 > end) end = lfCrLf + 3;
    }
    if (end === -1) {
      // An event ending across the border with the previous chunk.
      const first = chunk[0] as number;
      if (this.#prev1 === LF && first === LF) end = 1;
      else if (this.#prev1 === LF && first === CR && chunk[1] === LF) end = 2;
      else if (this.#prev2 === LF && this.#prev1 === CR && first === LF) end = 1;
    }
    if (length >= 2) {
      this.#prev2 = chunk[length - 2] as number;
      this.#prev1 = chunk[length - 1] as number;
    } else {
      this.#prev2 = this.#prev1;
      this.#prev1 = chunk[0] as number;
    }
    return end;
  }
}
