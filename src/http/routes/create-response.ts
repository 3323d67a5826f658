// POST /v1/responses, as one pipeline: receive -> decide -> (state) -> run -> deliver.
// A foreground run writes to this request's response; a background one is admitted,
// answered at once (JSON) or delivered as events, and goes on if the client leaves.
import type { ExchangeRecord } from '../../upstream/relay.ts';
import { ResponseSink } from '../../upstream/relay.ts';
import { FinalAnswerSink } from '../final-answer.ts';
import { deliverEvents } from '../event-delivery.ts';
import { forward, refuseWhileStarting, upstreamHeaders, usageScannerFor } from '../forward.ts';
import { newRun } from '../response-run.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import { decodeBody, isEncoded } from '../decode-body.ts';
import { readBody } from '../read-body.ts';
import { compactIfOver } from '../server-compaction.ts';
import type { RequestContext } from '../request-context.ts';
import type { CreateResponseRequest } from '../../responses/create-request.ts';

export async function createResponse(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  // receive: the whole body, bounded, before anything goes upstream
  const received = await readBody(ctx.req, deps.config.server.maxBodyBytes);
  const state: GatewayState | undefined = deps.state;
  if (state === undefined) {
    // --passthrough-raw: vLLM's bytes both ways, no state
    forward(ctx, deps, { body: received });
    return;
  }
  // A compressed body is read decoded (bounded by the same limit).
  const rawBody = isEncoded(ctx.req.headers) ? await decodeBody(received, ctx.req.headers, deps.config.server.maxBodyBytes) : received;
  // decide: a body that is not a valid request never reaches vLLM
  const request = await state.responses.parseCreate(rawBody);
  // A foreground run holds vLLM's answer until a kept context is confirmed (run.ts); not
  // one that may detach, which is then the registry's, no longer this request's to plan again.
  await planAndRun(ctx, deps, state, request, !request.background && !mayDetach(deps, request));
}

/** A foreground stream that goes on as a background run if its client leaves. */
function mayDetach(deps: GatewayDeps, request: CreateResponseRequest): boolean {
  return !request.background && deps.config.state.detachOnDisconnect && request.stream && request.store;
}

/**
 * state -> run -> deliver. With `holdsAnswer`, a continuation this process keeps the
 * context of is sent to vLLM while the store confirms that context; should it not be the
 * store's any more, that run is abandoned (nothing of it reached the client) and the
 * request planned again, its history read.
 */
async function planAndRun(ctx: RequestContext, deps: GatewayDeps, state: GatewayState, request: CreateResponseRequest, holdsAnswer: boolean): Promise<void> {
  // state: load the history, build the one stateless request vLLM gets, and the
  // normalizer that stores the answer before its last event
  const planned = await state.responses.planCreate(ctx.tenant, request, () => ctx.log, { holdsAnswer });
  if (refuseWhileStarting(ctx, deps)) return;
  // context_management: past its threshold, the conversation is summarised first
  const plan = await compactIfOver(deps, state, ctx.tenant, planned, (addHeaders) => upstreamHeaders(ctx, deps, { dropHeaders: planned.dropHeaders, addHeaders }));

  // run: one response from start to terminal state, whoever reads it
  const headers = upstreamHeaders(ctx, deps, plan);
  const usage = usageScannerFor(ctx);
  const background = request.background;
  // A background response is answered at once: what the backend cannot take is refused now.
  if (background && plan.body !== undefined) {
    const refused = deps.backend.refusal(plan.body);
    if (refused !== undefined) throw refused;
  }
  const detachable = mayDetach(deps, request);
  // A background run's exchange with vLLM is not this request's (which ends at once).
  const record: ExchangeRecord = background ? { upstreamStatus: undefined, streamed: false, bytesOut: 0, errorCode: undefined } : ctx.record;
  const run = newRun(deps, state, {
    tenant: ctx.tenant,
    plan,
    path: ctx.url,
    headers,
    record,
    extraHeaders: ctx.extraHeaders,
    route: ctx.route,
    startedAt: ctx.startedAt,
    log: () => ctx.log,
    keepEvents: background || detachable,
    usage,
  });

  if (!background) {
    // deliver: the relay writes to this client; its backpressure reaches vLLM
    // A tool loop's client that did not ask for a stream gets the final response at its end.
    const sink = plan.agent !== undefined && !request.stream ? new FinalAnswerSink(ctx, run) : new ResponseSink(ctx.res, ctx.record);
    // Bound methods, not arrow functions: an arrow made here would keep this function's
    // scope, and through `run` the whole response (its events, its answer), alive as long
    // as the scope lives, which measured as every request's objects outliving the
    // scavenge after them (bench/README.md, "Garbage": 2.8 MB promoted a scavenge at c=1
    // for JSON, 28–42 KB with these three bound).
    run.attachClient(sink, ctx.sendError.bind(ctx));
    ctx.onClientGone = run.clientGone.bind(run, detachable ? state.runs.detach.bind(state.runs) : undefined);
    ctx.onShutdown = run.failFromGateway.bind(run);
    run.start();
    if (plan.confirmation === undefined) return;
    let confirmed: boolean;
    try {
      confirmed = await plan.confirmation;
    } catch (error) {
      // The store failed to confirm: told as a failed read would be.
      run.abandon();
      throw error;
    }
    if (confirmed || run.ended) return;
    // Shut down while held: that is what the client is told.
    const failure = run.failure;
    run.abandon();
    if (failure !== undefined && 'error' in failure) ctx.sendError(failure.error);
    else await planAndRun(ctx, deps, state, request, false);
    return;
  }
  // background: stored as queued or in_progress before the answer, so any process finds it
  const status = await state.runs.startBackground(run);
  if (!request.stream) {
    ctx.sendJson(200, JSON.stringify(run.initialResponse(status)));
    return;
  }
  await deliverEvents(ctx, run.subscribe.bind(run, -1));
}
