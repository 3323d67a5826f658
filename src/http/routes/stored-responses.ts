// GET / DELETE /v1/responses/{id} (GET ?stream=true replays a background response's
// events), POST /v1/responses/{id}/cancel, and GET /v1/responses/{id}/input_items.
import { GatewayError } from '../../errors.ts';
import { parseListQuery } from '../../responses/list-query.ts';
import { deliverEvents } from '../event-delivery.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import type { RequestContext } from '../request-context.ts';
import type { Params } from '../router.ts';

function state(deps: GatewayDeps): GatewayState {
  return deps.state as GatewayState;
}

export function searchParams(ctx: RequestContext): URLSearchParams {
  const query = ctx.url.indexOf('?');
  return new URLSearchParams(query === -1 ? '' : ctx.url.slice(query + 1));
}

export async function getResponse(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  const query = searchParams(ctx);
  const background = state(deps).background;
  if (!booleanParam(query, 'stream')) {
    ctx.sendJson(200, await background.retrieve(ctx.tenant, params[0] as string));
    return;
  }
  const after = startingAfter(query);
  await deliverEvents(ctx, (subscriber) => background.stream(ctx.tenant, params[0] as string, after, subscriber));
}

export async function cancelResponse(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await state(deps).background.cancel(ctx.tenant, params[0] as string));
}

export async function deleteResponse(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await state(deps).background.delete(ctx.tenant, params[0] as string));
}

function booleanParam(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw new GatewayError('invalid_request', `Invalid '${name}': expected true or false.`, { param: name });
}

/** starting_after: the last sequence number the client has; every event after it is sent. */
function startingAfter(query: URLSearchParams): number {
  const value = query.get('starting_after');
  if (value === null) return -1;
  if (!/^\d{1,15}$/.test(value)) {
    throw new GatewayError('invalid_request', "Invalid 'starting_after': expected a sequence number (an integer >= 0).", {
      param: 'starting_after',
    });
  }
  return Number(value);
}

export async function listInputItems(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  const query = parseListQuery(searchParams(ctx));
  ctx.sendJson(200, await state(deps).responses.listInputItems(ctx.tenant, params[0] as string, query));
}
