// The delivery of a run whose client did not ask for a stream but whose response is made
// of events (a tool loop reads vLLM's calls as streams): nothing is written while it runs;
// at its end the client gets the final response as JSON, or why it failed, as the same
// request without tools would have told it.
import { GatewayError } from '../errors.ts';
import type { Run } from '../runs/run.ts';
import type { RelaySink } from '../upstream/relay.ts';
import type { RequestContext } from './request-context.ts';

export class FinalAnswerSink implements RelaySink {
  readonly #ctx: RequestContext;
  readonly #run: Run;

  constructor(ctx: RequestContext, run: Run) {
    this.#ctx = ctx;
    this.#run = run;
  }

  head(): void {
    // The answer's head is the JSON's, sent at the end.
  }

  write(): boolean {
    return true;
  }

  onceDrain(listener: () => void): void {
    listener();
  }

  end(): void {
    const ctx = this.#ctx;
    if (ctx.res.headersSent || ctx.res.destroyed) return;
    // vLLM's answers were read as streams; this client gets one JSON body.
    ctx.record.streamed = false;
    const transformer = this.#run.plan.transformer;
    const failure = this.#run.failure;
    const streamFailure = transformer.streamNormalizer().failure;
    const stored = transformer.stored;
    if (failure !== undefined && 'error' in failure) ctx.sendError(failure.error);
    // vLLM refused the request: its answer, as a proxy passes it on.
    else if (failure !== undefined) ctx.sendJson(failure.status, failure.body);
    // The stream failed half-way (vLLM gone, the store down): as the same failure without tools.
    else if (streamFailure !== undefined) ctx.sendError(streamFailure);
    else if (stored === undefined) ctx.sendError(new GatewayError('store_unavailable', 'The response could not be stored.'));
    // vLLM reported an error in its stream: the failed response's error, as an error answer.
    else if (stored.response['status'] === 'failed') ctx.sendJson(502, JSON.stringify({ error: upstreamError(stored.response['error']) }));
    else ctx.sendJson(200, stored.json);
  }

  destroy(): void {
    this.#ctx.res.destroy();
  }
}

/** A failed response's error (vLLM reported it in its stream), as the error answer. */
function upstreamError(error: unknown): { message: string; type: string; param: null; code: string } {
  const fields = typeof error === 'object' && error !== null ? (error as { code?: unknown; message?: unknown }) : {};
  return {
    message: typeof fields.message === 'string' ? fields.message : 'The model server reported an error.',
    type: 'server_error',
    param: null,
    code: typeof fields.code === 'string' ? fields.code : 'server_error',
  };
}
