// The client's own tools as vLLM can take them, and the calls restored on the way out.
// vLLM knows function tools only:
// - a `custom` tool (Codex's apply_patch: free text, perhaps with a grammar) is offered as
//   a function taking one string, `input`, its format told in the description; the call
//   comes back as a `custom_tool_call` item with that input;
// - a `namespace` tool's functions and custom tools are offered flattened, as
//   `<namespace>__<name>`; the calls come back under their own names, with `namespace`;
// - hosted tools the backend cannot run (web_search, file_search, code_interpreter, ...)
//   are dropped from what vLLM gets (--unsupported-tools drop, the default: an agent must
//   not fail its first turn on a tool it may never use) or refused (reject: 400).
// MCP tools are the tool loop's (agent-plan.ts). Plain function tools pass as they are.
import { GatewayError } from '../errors.ts';
import type { Json } from './items.ts';
import { toolFunctionName, uniqueFunctionName } from './mcp-items.ts';
import type { ToolRoute } from './output-items.ts';

export type UnsupportedTools = 'drop' | 'reject';

export interface ClientToolPlan {
  /** What vLLM gets as `tools`, or undefined when the request's own tools can go as they are. */
  readonly upstreamTools: readonly Json[] | undefined;
  /** What vLLM gets as `tool_choice` (undefined: the request's, unchanged or absent). */
  readonly toolChoice: unknown;
  /** The function names vLLM is offered (an MCP tool's name must differ). */
  readonly names: ReadonlySet<string>;
  /** Dropped hosted tool types (to log). */
  readonly dropped: readonly string[];
  readonly route: (functionName: string) => ToolRoute | undefined;
}

/** What OpenAI's schema requires of the hosted tools that have required fields. */
const HOSTED_TOOL_FIELDS: Readonly<Record<string, readonly string[]>> = {
  file_search: ['vector_store_ids'],
  computer_use_preview: ['display_height', 'display_width', 'environment'],
  code_interpreter: ['container'],
};

const NO_TOOLS: ClientToolPlan = { upstreamTools: undefined, toolChoice: undefined, names: new Set(), dropped: [], route: () => undefined };

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

/** How a custom tool's input must look, for the model to read in the description. */
function formatHint(format: unknown): string {
  if (!isObject(format) || format['type'] !== 'grammar') return '';
  const syntax = typeof format['syntax'] === 'string' ? format['syntax'] : 'lark';
  const definition = typeof format['definition'] === 'string' ? format['definition'] : '';
  return `\n\nThe input must follow this ${syntax} grammar:\n${definition}`;
}

/** A custom tool as a function of one string. */
function customAsFunction(tool: Json, name: string): Json {
  const description = typeof tool['description'] === 'string' ? tool['description'] : '';
  return {
    type: 'function',
    name,
    description: `${description}${formatHint(tool['format'])}`,
    parameters: {
      type: 'object',
      properties: { input: { type: 'string', description: 'The raw input of the tool, as free text.' } },
      required: ['input'],
      additionalProperties: false,
    },
    strict: false,
  };
}

/** The request's tools for vLLM; 400 for a tool it may not send (reject, or malformed). */
export function planClientTools(tools: unknown, toolChoice: unknown, unsupported: UnsupportedTools): ClientToolPlan {
  if (!Array.isArray(tools) || tools.length === 0) return NO_TOOLS;
  const upstream: Json[] = [];
  const routes = new Map<string, ToolRoute>();
  const names = new Set<string>();
  const dropped: string[] = [];
  let changed = false;
  const offer = (tool: Json, param: string, namespace: string | undefined): void => {
    const type = tool['type'];
    const name = tool['name'];
    if (typeof name !== 'string' || name.length === 0) throw invalid("Missing or invalid 'name': expected a string.", `${param}.name`);
    if (type !== 'function' && type !== 'custom') throw invalid(`A namespace holds function and custom tools, not '${String(type)}'.`, `${param}.type`);
    const offered = uniqueFunctionName(namespace === undefined ? name : toolFunctionName(namespace, name), names);
    if (type === 'custom') upstream.push(customAsFunction(tool, offered));
    else upstream.push(namespace === undefined ? tool : { ...tool, name: offered });
    if (type === 'custom' || namespace !== undefined) {
      changed = true;
      routes.set(offered, { kind: type === 'custom' ? 'custom_tool_call' : 'function_call', name, namespace });
    }
  };
  tools.forEach((tool: unknown, index) => {
    const param = `tools[${index}]`;
    if (!isObject(tool)) throw invalid('Invalid tool: expected an object.', param);
    const type = tool['type'];
    if (type === 'mcp') {
      changed = true; // the tool loop offers its tools itself
      return;
    }
    if (type === 'function' || type === 'custom') {
      offer(tool, param, undefined);
      return;
    }
    if (type === 'namespace') {
      const namespace = tool['name'];
      if (typeof namespace !== 'string' || namespace.length === 0) throw invalid("Missing or invalid 'name': expected a string.", `${param}.name`);
      if (typeof tool['description'] !== 'string') throw invalid("Missing required parameter: 'description'.", `${param}.description`);
      if (!Array.isArray(tool['tools'])) throw invalid("Missing or invalid 'tools': expected a list.", `${param}.tools`);
      (tool['tools'] as unknown[]).forEach((inner, innerIndex) => {
        if (!isObject(inner)) throw invalid('Invalid tool: expected an object.', `${param}.tools[${innerIndex}]`);
        offer(inner, `${param}.tools[${innerIndex}]`, namespace);
      });
      changed = true;
      return;
    }
    // Dropped or not, a hosted tool is refused as OpenAI refuses it when a field it needs is missing.
    for (const field of HOSTED_TOOL_FIELDS[String(type)] ?? []) {
      if (tool[field] === undefined || tool[field] === null) throw invalid(`Missing required parameter: '${param}.${field}'.`, `${param}.${field}`);
    }
    if (unsupported === 'reject') {
      throw invalid(
        `The tool type '${String(type).slice(0, 64)}' cannot run on this gateway's model server (--unsupported-tools reject).`,
        `${param}.type`,
      );
    }
    dropped.push(String(type));
    changed = true;
  });
  // Listed, not spread (a spread copy costs about a microsecond per request).
  if (!changed) return { upstreamTools: undefined, toolChoice: undefined, names, dropped: NO_TOOLS.dropped, route: NO_TOOLS.route };
  return { upstreamTools: upstream, toolChoice: translateChoice(toolChoice, routes, names), names, dropped, route: (name) => routes.get(name) };
}

/** tool_choice naming a custom or namespaced tool names its function; one naming a
 * dropped hosted tool becomes auto. */
function translateChoice(choice: unknown, routes: ReadonlyMap<string, ToolRoute>, names: ReadonlySet<string>): unknown {
  if (!isObject(choice)) return choice;
  const type = choice['type'];
  if (type === 'function' || type === 'custom') {
    for (const [offered, route] of routes) {
      if ('namespace' in route && route.name === choice['name'] && (choice['namespace'] === undefined || choice['namespace'] === route.namespace)) {
        return { type: 'function', name: offered };
      }
    }
    return type === 'function' && names.has(String(choice['name'])) ? choice : 'auto';
  }
  // allowed_tools and MCP choices are left to vLLM and the tool loop.
  return type === 'allowed_tools' || type === 'mcp' ? choice : 'auto';
}

/** A custom tool call's input from its function arguments ({"input": "..."}); the raw
 * arguments when the model did not write that object. */
export function customInput(args: string): string {
  try {
    const parsed: unknown = JSON.parse(args);
    if (isObject(parsed) && typeof parsed['input'] === 'string') return parsed['input'];
  } catch {
    // Not JSON: the model wrote the input itself.
  }
  return args;
}

/** A function_call item (normalized) as the client sees the call of `route`'s tool. */
export function restoredCall(item: Json, route: ToolRoute): Json {
  if (route.kind === 'function_call') {
    const restored: Json = { ...item, name: route.name };
    if (route.namespace !== undefined) restored['namespace'] = route.namespace;
    return restored;
  }
  if (route.kind !== 'custom_tool_call') return item;
  const call: Json = {
    id: item['id'],
    type: 'custom_tool_call',
    call_id: item['call_id'],
    input: customInput(typeof item['arguments'] === 'string' ? item['arguments'] : ''),
    name: route.name,
  };
  if (route.namespace !== undefined) call['namespace'] = route.namespace;
  return call;
}
