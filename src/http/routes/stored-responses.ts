// GET / DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items.
import { parseListQuery } from '../../responses/list-query.ts';
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
  ctx.sendJson(200, await state(deps).responses.getResponse(ctx.tenant, params[0] as string));
}

export async function deleteResponse(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await state(deps).responses.deleteResponse(ctx.tenant, params[0] as string));
}

export async function listInputItems(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  const query = parseListQuery(searchParams(ctx));
  ctx.sendJson(200, await state(deps).responses.listInputItems(ctx.tenant, params[0] as string, query));
}
