// What a response that uses MCP tools needs before its first vLLM call: each server it
// reaches (and the tools a stored mcp_list_tools already lists for it), the calls its
// client approved, its tool-call budget, and the vLLM request of each turn: the history
// and the new input, then what the response has produced so far (calls and their
// outputs), with the client's tools and the servers' tools as functions.
import type { McpTarget } from '../mcp/server-policy.ts';
import type { ClientToolPlan } from './client-tools.ts';
import type { ApprovalRule, McpDeclaration, ToolFilter } from './mcp-declarations.ts';
import type { Json } from './items.ts';

/** A tool as an mcp_list_tools item lists it. */
export interface ListedTool {
  readonly name: string;
  readonly description: string | null;
  readonly input_schema: unknown;
  readonly annotations: unknown;
}

export interface PlannedServer {
  readonly label: string;
  readonly target: McpTarget;
  /** The request's, else the operator's; undefined: every tool. */
  readonly allowedTools: ToolFilter | undefined;
  /** The request's, else the operator's, else OpenAI's default: always ask. */
  readonly approval: ApprovalRule;
  readonly description: string | undefined;
  /** Listed by a stored mcp_list_tools of this history: reused, not listed again. */
  readonly listed: readonly ListedTool[] | undefined;
}

/** A call its client approved (mcp_approval_response with approve: true): run first. */
export interface ApprovedCall {
  readonly approvalRequestId: string;
  readonly serverLabel: string;
  readonly name: string;
  readonly arguments: string;
}

/** The parts of the vLLM request that stay the same from turn to turn. */
export interface TurnRequestParts {
  /** `{"input":[` + history + new input items (their upstream forms, comma-joined). */
  readonly inputPrefix: Buffer;
  readonly inputHasItems: boolean;
  /** The client's other fields as JSON members, without braces (may be empty). */
  readonly members: string;
  /** The client's own tools (functions and others), passed on as they are. */
  readonly clientTools: readonly unknown[];
  /** The client's tool_choice (undefined when absent). */
  readonly toolChoice: unknown;
}

export interface AgentPlan {
  readonly servers: readonly PlannedServer[];
  readonly approved: readonly ApprovedCall[];
  /** max_tool_calls: calls of server-side tools in the whole response. */
  readonly maxToolCalls: number | undefined;
  readonly request: TurnRequestParts;
}

/** Fields the gateway decides for every vLLM call of a tool loop. */
const DECIDED_FIELDS = new Set([
  'input',
  'previous_response_id',
  'conversation',
  'store',
  'background',
  'stream',
  'tools',
  'tool_choice',
  'max_tool_calls',
]);

export function turnRequestParts(body: Readonly<Json>, history: Buffer, newItems: readonly string[], clientTools: ClientToolPlan): TurnRequestParts {
  const members: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (!DECIDED_FIELDS.has(key) && value !== undefined) members.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  }
  const tools = clientTools.upstreamTools ?? (Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : []);
  const separator = history.length > 0 && newItems.length > 0 ? ',' : '';
  return {
    inputPrefix: Buffer.concat([Buffer.from('{"input":['), history, Buffer.from(separator + newItems.join(','))]),
    inputHasItems: history.length > 0 || newItems.length > 0,
    members: members.join(','),
    clientTools: tools.filter((tool) => !(typeof tool === 'object' && tool !== null && (tool as Json)['type'] === 'mcp')),
    toolChoice: clientTools.upstreamTools === undefined ? body['tool_choice'] : clientTools.toolChoice,
  };
}

/** One vLLM request of the loop: the input so far, then the response's items so far. */
export function turnRequestBody(parts: TurnRequestParts, turnItems: readonly string[], functions: readonly Json[], toolChoice: unknown): Buffer {
  const items = turnItems.length === 0 ? '' : `${parts.inputHasItems ? ',' : ''}${turnItems.join(',')}`;
  const tools = [...parts.clientTools, ...functions];
  let tail = parts.members.length > 0 ? `],${parts.members}` : ']';
  if (tools.length > 0) tail += `,"tools":${JSON.stringify(tools)}`;
  if (tools.length > 0 && toolChoice !== undefined) tail += `,"tool_choice":${JSON.stringify(toolChoice)}`;
  tail += ',"stream":true,"store":false}';
  return Buffer.concat([parts.inputPrefix, Buffer.from(items + tail)]);
}

/** A declaration with the operator's settings where the request gives none. */
export function plannedServer(declaration: McpDeclaration, target: McpTarget, listed: readonly ListedTool[] | undefined, parse: {
  filter(value: unknown): ToolFilter;
  approval(value: unknown): ApprovalRule;
}): PlannedServer {
  const operator = target.operator;
  return {
    label: declaration.label,
    target,
    allowedTools:
      declaration.allowedTools ?? (operator?.allowedTools === undefined ? undefined : parse.filter(operator.allowedTools)),
    approval:
      declaration.approval ??
      (operator?.requireApproval === undefined
        ? { always: undefined, never: undefined, otherwise: true }
        : parse.approval(operator.requireApproval)),
    description: declaration.description ?? operator?.description,
    listed,
  };
}
