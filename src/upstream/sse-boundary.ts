// Finds where server-sent events end, across chunk borders, without parsing them.
//
// An SSE event ends at a blank line (WHATWG HTML §9.2.6). vLLM writes the `event:` line,
// the `data:` line and the blank line as three separate chunks, so an event's end is often
// a lone "\n" chunk after a chunk that ended in "\n". Line ends are LF or CRLF; a bare CR
// line end (allowed by the spec, used by no server we know) is not recognised.

const LF = 0x0a;
const CR = 0x0d;

export class SseBoundary {
  /** The last two bytes seen, most recent last; 0 when none. */
  #prev1 = 0;
  #prev2 = 0;

  /**
   * Feed the next chunk; returns the offset just past the last event end inside it,
   * or -1 when no event ends in this chunk.
   */
  push(chunk: Buffer): number {
    const length = chunk.length;
    if (length === 0) return -1;
    let end = -1;
    // An event ending inside the chunk: "\n\n" or "\n\r\n".
    const lfLf = chunk.lastIndexOf('\n\n');
    if (lfLf !== -1) end = lfLf + 2;
    const lfCrLf = chunk.lastIndexOf('\n\r\n');
    if (lfCrLf !== -1 && lfCrLf + 3 > end) end = lfCrLf + 3;
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
