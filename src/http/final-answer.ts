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
    const finalJson = transformer.finalJson;
    if (failure !== undefined && 'error' in failure) ctx.sendError(failure.error);
    // vLLM refused the request: its answer, as a proxy passes it on.
    else if (failure !== undefined) ctx.sendJson(failure.status, failure.body);
    // The stream failed half-way (vLLM gone, the store down): as the same failure without tools.
    else if (streamFailure !== undefined) ctx.sendError(streamFailure);
    else if (finalJson !== undefined && transformer.finalStatus === 'failed') ctx.sendJson(502, upstreamErrorBody(finalJson));
    else if (finalJson !== undefined) ctx.sendJson(200, finalJson);
    else ctx.sendError(new GatewayError('store_unavailable', 'The response could not be stored.'));
  }

  destroy(): void {
    this.#ctx.res.destroy();
  }
}

/** vLLM reported an error in its stream: the failed response's error, as an error answer. */
function upstreamErrorBody(responseJson: string): string {
  const response = JSON.parse(responseJson) as { error?: { code?: unknown; message?: unknown } | null };
  const code = typeof response.error?.code === 'string' ? response.error.code : 'server_error';
  const message = typeof response.error?.message === 'string' ? response.error.message : 'The model server reported an error.';
  return JSON.stringify({ error: { message, type: 'server_error', param: null, code } });
}
