// The Conversations API: /v1/conversations, /v1/conversations/{id}, and its items.
import { parseJsonObject } from '../../responses/create-request.ts';
import { parseListQuery } from '../../responses/list-query.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import { readRequestBody } from '../decode-body.ts';
import type { RequestContext } from '../request-context.ts';
import type { Params } from '../router.ts';
import { searchParams } from './stored-responses.ts';

function conversations(deps: GatewayDeps): GatewayState['conversations'] {
  return (deps.state as GatewayState).conversations;
}

async function jsonBody(ctx: RequestContext, deps: GatewayDeps, allowEmpty: boolean): Promise<Record<string, unknown>> {
  const raw = await readRequestBody(ctx.req, deps.config.server.maxBodyBytes);
  return allowEmpty && raw.length === 0 ? {} : parseJsonObject(raw, deps.config.server.maxJsonDepth);
}

export async function createConversation(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  ctx.sendJson(200, await conversations(deps).create(ctx.tenant, await jsonBody(ctx, deps, true)));
}

export async function getConversation(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).get(ctx.tenant, params[0] as string));
}

export async function updateConversation(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).update(ctx.tenant, params[0] as string, await jsonBody(ctx, deps, false)));
}

export async function deleteConversation(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).delete(ctx.tenant, params[0] as string));
}

export async function listConversationItems(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  const query = parseListQuery(searchParams(ctx));
  ctx.sendJson(200, await conversations(deps).listItems(ctx.tenant, params[0] as string, query));
}

export async function addConversationItems(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).addItems(ctx.tenant, params[0] as string, await jsonBody(ctx, deps, false)));
}

export async function getConversationItem(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).getItem(ctx.tenant, params[0] as string, params[1] as string));
}

export async function deleteConversationItem(ctx: RequestContext, deps: GatewayDeps, params: Params): Promise<void> {
  ctx.sendJson(200, await conversations(deps).deleteItem(ctx.tenant, params[0] as string, params[1] as string));
}
