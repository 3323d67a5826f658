// Renders the events of one normalized stream: the SSE text clients get, with an `event:`
// line equal to the type and `sequence_number`s from 0 without gaps, which this object
// alone hands out. Events are built from fields, or spliced from vLLM's bytes when only
// ids, indices and the sequence number change (the deltas, nearly all of a stream).
import { renderSseError, renderSseErrorObject, type ErrorObject } from '../errors.ts';
import type { Json } from './items.ts';
import { integerSpan, splice, type Replacement, type Span, field } from './json-fields.ts';

const SEQUENCE_NUMBER = field('sequence_number');
/** Ends every stream, after its terminal event. */
export const DONE_LINE = 'data: [DONE]\n\n';

export class EventRenderer {
  #sequence: number;

  /** `firstSequence`: where a stream begun elsewhere goes on (a log being closed). */
  constructor(firstSequence = 0) {
    this.#sequence = firstSequence;
  }

  /** An event from its fields; `fields` must not carry type or sequence_number. */
  send(out: string[], type: string, fields: Json): void {
    out.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields, sequence_number: this.#sequence++ })}\n\n`);
  }

  /** An event carrying a response object, already JSON (created, in_progress, terminal). */
  responseEvent(type: string, responseJson: string): string {
    return `event: ${type}\ndata: {"type":"${type}","response":${responseJson},"sequence_number":${this.#sequence++}}\n\n`;
  }

  /** vLLM's delta with only its item id and sequence number replaced (the common case). */
  deltaWithId(out: string[], type: string, data: string, idSpan: Span, itemId: string, sequenceSpan: Span): void {
    out.push(
      `event: ${type}\ndata: ${data.slice(0, idSpan.start)}${itemId}${data.slice(idSpan.end, sequenceSpan.start)}${this.#sequence++}${data.slice(sequenceSpan.end)}\n\n`,
    );
  }

  /** The same, for a delta event read where it lies: text[start, end) is the whole event
   * block ("event: T\ndata: {...}"), its `event:` line kept as it is. */
  deltaInPlace(out: string[], text: string, start: number, end: number, idSpan: Span, itemId: string, sequenceSpan: Span): void {
    out.push(`${text.slice(start, idSpan.start)}${itemId}${text.slice(idSpan.end, sequenceSpan.start)}${this.#sequence++}${text.slice(sequenceSpan.end, end)}\n\n`);
  }

  /** vLLM's event with the replacements and the next sequence number spliced in. */
  spliced(out: string[], type: string, data: string, replacements: Replacement[]): void {
    const sequence = String(this.#sequence++);
    const span = integerSpan(data, SEQUENCE_NUMBER);
    let json: string;
    if (span !== undefined) {
      replacements.push({ span, text: sequence });
      json = splice(data, replacements);
    } else {
      const without = splice(data, replacements);
      json = `${without.slice(0, without.lastIndexOf('}'))},"sequence_number":${sequence}}`;
    }
    out.push(`event: ${type}\ndata: ${json}\n\n`);
  }

  /** An `error` event for the gateway's own error. */
  error(error: unknown): string {
    return renderSseError(error, this.#sequence++);
  }

  /** An `error` event carrying vLLM's error. */
  errorObject(error: ErrorObject): string {
    return renderSseErrorObject(error, this.#sequence++);
  }
}
