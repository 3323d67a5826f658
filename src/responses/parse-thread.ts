// A parser thread: reads a large POST /v1/responses body (JSON.parse, validation, the
// input planned as items) off the event loop, where a 10 MiB body of tiny items would
// hold every other request for a second. It sends back the body without `input` and the
// planned items, never the parsed input itself (copying it back would cost as much).
import { parentPort } from 'node:worker_threads';
import { GatewayError, toErrorObject } from '../errors.ts';
import { parseCreateResponseRequest, type RequestLimits } from './create-request.ts';
import { planInputItems, type PlannedItem } from './items.ts';
import { yieldToEventLoop } from '../threads/start-thread.ts';

export interface ParseJob {
  readonly id: number;
  readonly body: Uint8Array;
  readonly limits: RequestLimits;
}

export interface ParsedFields {
  readonly body: Record<string, unknown>;
  readonly stream: boolean;
  readonly store: boolean;
  readonly background: boolean;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  readonly inputItemCount: number;
  readonly planned: readonly PlannedItem[] | undefined;
}

export type ParseReply =
  | { readonly id: number; readonly ok: true; readonly parsed: ParsedFields }
  | { readonly id: number; readonly ok: false; readonly error: { code: string; message: string; param: string | null } };

function parse(job: ParseJob): ParseReply {
  try {
    const request = parseCreateResponseRequest(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength), job.limits);
    const { input, ...body } = request.body;
    // store: false without history sends the client's bytes on unread: no items needed.
    const needsItems = request.store || request.previousResponseId !== null || request.conversationId !== null;
    return {
      id: job.id,
      ok: true,
      parsed: {
        body,
        stream: request.stream,
        store: request.store,
        background: request.background,
        previousResponseId: request.previousResponseId,
        conversationId: request.conversationId,
        inputItemCount: request.inputItemCount,
        planned: needsItems ? planInputItems(input) : undefined,
      },
    };
  } catch (error) {
    const { code, message, param } = toErrorObject(error instanceof GatewayError ? error : new GatewayError('invalid_json', 'The request body could not be read.'));
    return { id: job.id, ok: false, error: { code, message, param } };
  }
}

// Parsing a huge body is bulk work: when the cores are busy, requests in flight go first.
yieldToEventLoop(10);

parentPort?.on('message', (job: ParseJob) => {
  parentPort?.postMessage(parse(job));
});
