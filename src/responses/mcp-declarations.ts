// A request's `{"type": "mcp"}` tools, read and checked field by field as OpenAI's remote
// MCP tool defines them: server_label, server_url, server_description, headers,
// authorization, allowed_tools (a list or a filter), require_approval ("always",
// "never" or a filter). Pure: which server a label reaches is decided in mcp/.
import { GatewayError } from '../errors.ts';
import type { Json } from './items.ts';

/** OpenAI's tool filter: names, and/or the server's read-only annotation. */
export interface ToolFilter {
  readonly names: ReadonlySet<string> | undefined;
  readonly readOnly: boolean | undefined;
}

export interface ApprovalRule {
  readonly always: ToolFilter | undefined;
  readonly never: ToolFilter | undefined;
  /** For a tool neither filter names: OpenAI asks for approval unless told "never". */
  readonly otherwise: boolean;
}

export interface McpDeclaration {
  /** Where it is in the request (tools[i]), for errors. */
  readonly param: string;
  readonly label: string;
  readonly url: string | undefined;
  readonly description: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly authorization: string | undefined;
  /** undefined: the request did not say (the operator's setting, else every tool). */
  readonly allowedTools: ToolFilter | undefined;
  /** undefined: the request did not say (the operator's setting, else "always"). */
  readonly approval: ApprovalRule | undefined;
}

/** The part of a listed tool the filters read. */
export interface ToolFacts {
  readonly name: string;
  readonly annotations: unknown;
}

const LABEL = /^[A-Za-z0-9_-]{1,64}$/;

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(tool: Json, field: string, param: string): string | undefined {
  const value = tool[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`Invalid type for '${field}': expected a string.`, `${param}.${field}`);
  return value;
}

function names(value: unknown, param: string): ReadonlySet<string> {
  if (!Array.isArray(value) || !value.every((name) => typeof name === 'string')) {
    throw invalid('Invalid tool names: expected a list of strings.', param);
  }
  return new Set(value);
}

/** A filter object {tool_names?, read_only?}, or (for allowed_tools) a plain list of names. */
export function parseToolFilter(value: unknown, param: string, listAllowed: boolean): ToolFilter {
  if (Array.isArray(value)) {
    if (!listAllowed) throw invalid('Invalid filter: expected an object with tool_names and/or read_only.', param);
    return { names: names(value, param), readOnly: undefined };
  }
  if (!isObject(value)) throw invalid('Invalid filter: expected a list of tool names or an object with tool_names and/or read_only.', param);
  for (const key of Object.keys(value)) {
    if (key !== 'tool_names' && key !== 'read_only') throw invalid(`Unknown field '${key}' in a tool filter.`, `${param}.${key}`);
  }
  const readOnly = value['read_only'];
  if (readOnly !== undefined && readOnly !== null && typeof readOnly !== 'boolean') {
    throw invalid("Invalid type for 'read_only': expected a boolean.", `${param}.read_only`);
  }
  return {
    names: value['tool_names'] === undefined || value['tool_names'] === null ? undefined : names(value['tool_names'], `${param}.tool_names`),
    readOnly: typeof readOnly === 'boolean' ? readOnly : undefined,
  };
}

export function parseApprovalRule(value: unknown, param: string): ApprovalRule {
  if (value === 'always') return { always: undefined, never: undefined, otherwise: true };
  if (value === 'never') return { always: undefined, never: undefined, otherwise: false };
  if (!isObject(value)) throw invalid("Invalid 'require_approval': expected \"always\", \"never\" or an object with always and/or never filters.", param);
  for (const key of Object.keys(value)) {
    if (key !== 'always' && key !== 'never') throw invalid(`Unknown field '${key}' in require_approval.`, `${param}.${key}`);
  }
  const filter = (key: string): ToolFilter | undefined =>
    value[key] === undefined || value[key] === null ? undefined : parseToolFilter(value[key], `${param}.${key}`, false);
  return { always: filter('always'), never: filter('never'), otherwise: true };
}

/** Whether a filter takes the tool: every condition it sets holds. */
export function filterTakes(filter: ToolFilter, tool: ToolFacts): boolean {
  if (filter.names !== undefined && !filter.names.has(tool.name)) return false;
  if (filter.readOnly !== undefined) {
    const hint = isObject(tool.annotations) ? tool.annotations['readOnlyHint'] === true : false;
    if (hint !== filter.readOnly) return false;
  }
  return true;
}

export function needsApproval(rule: ApprovalRule, tool: ToolFacts): boolean {
  if (rule.never !== undefined && filterTakes(rule.never, tool)) return false;
  if (rule.always !== undefined && filterTakes(rule.always, tool)) return true;
  return rule.otherwise;
}

function parseHeaders(value: unknown, param: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value) || !Object.values(value).every((header) => typeof header === 'string')) {
    throw invalid("Invalid 'headers': expected an object of strings.", param);
  }
  return value as Record<string, string>;
}

/** The request's MCP tools (empty when it has none); 400 for one OpenAI would refuse. */
export function parseMcpDeclarations(tools: unknown): McpDeclaration[] {
  if (!Array.isArray(tools)) return [];
  const declarations: McpDeclaration[] = [];
  const labels = new Set<string>();
  tools.forEach((tool: unknown, index) => {
    if (!isObject(tool) || tool['type'] !== 'mcp') return;
    const param = `tools[${index}]`;
    const label = tool['server_label'];
    if (typeof label !== 'string' || !LABEL.test(label)) {
      throw invalid("Invalid 'server_label': expected 1-64 letters, digits, _ or -.", `${param}.server_label`);
    }
    if (labels.has(label)) throw invalid(`Two MCP tools have the server_label '${label}'; labels must be unique.`, `${param}.server_label`);
    labels.add(label);
    for (const field of ['connector_id', 'tunnel_id']) {
      if (tool[field] !== undefined && tool[field] !== null) {
        throw invalid(`'${field}' is not supported by this gateway: give a server_url, or a server_label its operator configured.`, `${param}.${field}`);
      }
    }
    declarations.push({
      param,
      label,
      url: optionalString(tool, 'server_url', param),
      description: optionalString(tool, 'server_description', param),
      headers: parseHeaders(tool['headers'], `${param}.headers`),
      authorization: optionalString(tool, 'authorization', param),
      allowedTools:
        tool['allowed_tools'] === undefined || tool['allowed_tools'] === null
          ? undefined
          : parseToolFilter(tool['allowed_tools'], `${param}.allowed_tools`, true),
      approval:
        tool['require_approval'] === undefined || tool['require_approval'] === null
          ? undefined
          : parseApprovalRule(tool['require_approval'], `${param}.require_approval`),
    });
  });
  return declarations;
}
