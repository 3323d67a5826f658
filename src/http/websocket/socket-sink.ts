// A run's output on a WebSocket: each server-sent event becomes one JSON text message (its
// `data:` line, the same normalized event as over HTTP), `[DONE]` none. A socket whose
// buffer holds more than HIGH_WATER_BYTES says so, and the relay stops reading from vLLM
// until it is written out: backpressure end to end, as for an HTTP client. vLLM's refusal
// (an error status) and the gateway's errors become `error` messages.
import type { WebSocket } from 'ws';
import { errorEventPayload, toErrorObject } from '../../errors.ts';
import type { ExchangeRecord, RelaySink } from '../../upstream/relay.ts';
import { upstreamErrorOf } from '../../upstream/upstream-error.ts';

/** Bytes queued on the socket before the relay is asked to wait. */
const HIGH_WATER_BYTES = 64 * 1024;
const DATA_PREFIX = 'data: ';

/** The JSON of one rendered SSE event (`event: x\ndata: {...}\n\n`), or undefined for [DONE]. */
export function eventJson(event: string): string | undefined {
  const at = event.indexOf(DATA_PREFIX);
  if (at === -1) return undefined;
  const json = event.slice(at + DATA_PREFIX.length, event.endsWith('\n\n') ? -2 : undefined);
  return json === '[DONE]' ? undefined : json;
}

export class SocketSink implements RelaySink {
  readonly #ws: WebSocket;
  readonly #record: ExchangeRecord;
  /** Called once when the response has ended on the socket. */
  onEnd: () => void = () => undefined;
  /** vLLM's error answer being read (an error status). */
  #refusal: Buffer[] | undefined;
  #refusalStatus = 0;
  #drainWaiters: Array<() => void> = [];
  #ended = false;

  constructor(ws: WebSocket, record: ExchangeRecord) {
    this.#ws = ws;
    this.#record = record;
  }

  head(status: number): void {
    this.#record.streamed = true;
    if (status >= 300) {
      this.#refusal = [];
      this.#refusalStatus = status;
    }
  }

  write(parts: readonly (string | Buffer)[]): boolean {
    if (this.#refusal !== undefined) {
      for (const part of parts) this.#refusal.push(Buffer.from(part));
      return true;
    }
    for (const part of parts) {
      const json = eventJson(typeof part === 'string' ? part : part.toString());
      if (json !== undefined) this.#send(json);
    }
    return this.#ws.bufferedAmount < HIGH_WATER_BYTES;
  }

  onceDrain(listener: () => void): void {
    this.#drainWaiters.push(listener);
  }

  end(): void {
    const refusal = this.#refusal;
    if (refusal !== undefined) {
      this.#refusal = undefined;
      this.#sendRefusal(Buffer.concat(refusal).toString());
    }
    this.#finish();
  }

  destroy(): void {
    this.sendError(new Error('The model server cut its answer short.'));
  }

  /** The gateway's own error, as an `error` event (the response ends with it). */
  sendError(error: unknown): void {
    const { type, code, message, param } = toErrorObject(error);
    this.#send(JSON.stringify(errorEventPayload({ type, code, message, param }, undefined)));
    this.#finish();
  }

  /** vLLM refused the request: its error, as OpenAI's `error` event. */
  #sendRefusal(body: string): void {
    const error = upstreamErrorOf(body);
    this.#send(
      JSON.stringify({
        type: 'error',
        error: {
          type: typeof error['type'] === 'string' ? error['type'] : 'invalid_request_error',
          code: typeof error['code'] === 'string' ? error['code'] : String(this.#refusalStatus),
          message: typeof error['message'] === 'string' ? error['message'] : 'The model server refused the request.',
          param: typeof error['param'] === 'string' ? error['param'] : null,
        },
      }),
    );
  }

  #send(json: string): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#record.bytesOut += json.length;
    this.#ws.send(json, () => this.#checkDrain());
  }

  #checkDrain(): void {
    if (this.#ws.bufferedAmount >= HIGH_WATER_BYTES || this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd();
  }
}
