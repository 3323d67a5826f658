// The items of OpenAI's remote MCP tool (mcp_list_tools, mcp_call, mcp_approval_request,
// mcp_approval_response) in their two forms: as the client sees them, and as vLLM gets
// them back in a later turn's input. vLLM knows no MCP items; what it accepts is a call
// and its output: a function_call of the name the tool was offered under, followed by
// its function_call_output. A tool list and an approval request are not sent at all.
import type { Json } from './items.ts';

/** OpenAI's function names: 1-64 of [A-Za-z0-9_-]. */
const FUNCTION_NAME_CHARS = /[^A-Za-z0-9_-]/g;
const MAX_FUNCTION_NAME = 64;

/** The function name a server's tool is offered to vLLM under (before collisions are
 * resolved): its label and its name, so that two servers' `search` stay apart. */
export function toolFunctionName(serverLabel: string, toolName: string): string {
  return `${serverLabel}__${toolName}`.replace(FUNCTION_NAME_CHARS, '_').slice(0, MAX_FUNCTION_NAME);
}

/** `base`, or `base_2`, `base_3`... when another tool of the request has it; kept in `taken`. */
export function uniqueFunctionName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base.slice(0, MAX_FUNCTION_NAME - 4)}_${n}`;
  taken.add(name);
  return name;
}

export interface McpCallFields {
  readonly id: string;
  readonly status: string;
  readonly approvalRequestId: string | null;
  readonly arguments: string;
  readonly error: string | null;
  readonly name: string;
  readonly output: string | null;
  readonly serverLabel: string;
}

/** An mcp_call item in OpenAI's shape and field order. */
export function mcpCallItem(fields: McpCallFields): Json {
  return {
    id: fields.id,
    type: 'mcp_call',
    status: fields.status,
    approval_request_id: fields.approvalRequestId,
    arguments: fields.arguments,
    error: fields.error,
    name: fields.name,
    output: fields.output,
    server_label: fields.serverLabel,
  };
}

/** What the model is told when a call did not run or failed. */
function outputForModel(item: Json): string {
  if (typeof item['output'] === 'string') return item['output'];
  const error = typeof item['error'] === 'string' ? item['error'] : 'The tool call did not complete.';
  return `Error: ${error}`;
}

/** A call and its output, as vLLM takes them back (the two items of an mcp_call). */
export function callPairUpstream(callId: string, functionName: string, args: string, output: string): string {
  return `${JSON.stringify({ type: 'function_call', id: callId, call_id: callId, name: functionName, arguments: args })},${JSON.stringify({
    type: 'function_call_output',
    call_id: callId,
    output,
  })}`;
}

/** The upstream form of a finished mcp_call. */
export function mcpCallUpstream(item: Json): string {
  const id = String(item['id']);
  const label = typeof item['server_label'] === 'string' ? item['server_label'] : '';
  const name = toolFunctionName(label, typeof item['name'] === 'string' ? item['name'] : '');
  return callPairUpstream(id, name, typeof item['arguments'] === 'string' ? item['arguments'] : '{}', outputForModel(item));
}

/** What the model is told of a call its user refused. */
export function declinedOutput(reason: unknown): string {
  const why = typeof reason === 'string' && reason.length > 0 ? ` Reason: ${reason}` : '';
  return `The user declined to run this tool call.${why}`;
}
