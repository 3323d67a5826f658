// The tool loop of a response that uses MCP servers, as OpenAI's hosted MCP tool runs it:
//
// 1. begin: the stream opens; each server's tools are listed (an mcp_list_tools item,
//    unless the history already holds one for it), the calls the client approved run
//    (mcp_call items), and the first vLLM request is built: the servers' allowed tools
//    offered as functions beside the client's own.
// 2. each vLLM call's end (the normalizer asks, turnEnded): the calls the model made of
//    server-side tools run in parallel, each result sent as it comes; unless the
//    response ends here (a client function call, an approval request, a response cut
//    short, no calls), the next request is built with the calls and their outputs, and
//    the run sends it.
//
// Bounded: --mcp-max-rounds rounds and the request's max_tool_calls; past either, the
// model is offered no more MCP tools and answers. Every failure of a server (down, slow,
// garbage, gone mid-call) is a failed item with its reason, never a failed response.
import type { McpSessions, McpToolInfo } from '../mcp/mcp-sessions.ts';
import type { AgentPlan, ApprovedCall, ListedTool, PlannedServer } from '../responses/agent-plan.ts';
import { turnRequestBody } from '../responses/agent-plan.ts';
import { filterTakes, needsApproval } from '../responses/mcp-declarations.ts';
import { mcpCallItem, toolFunctionName, uniqueFunctionName } from '../responses/mcp-items.ts';
import { NOT_SENT_UPSTREAM, storedOutputItem, type Json } from '../responses/items.ts';
import type { ItemState, ToolRoute } from '../responses/output-items.ts';
import type { PlannedTransform } from '../responses/responses-service.ts';
import type { AgentHooks, StreamNormalizer, ToolResult, TurnEnd } from '../responses/stream-normalizer.ts';
import type { Emit } from '../upstream/relay.ts';

export interface AgentLoopOptions {
  readonly plan: AgentPlan;
  /** Its stream normalizer renders the loop's items; the loop becomes its agent. */
  readonly transform: PlannedTransform;
  readonly sessions: McpSessions;
  readonly maxRounds: number;
}

/** A server-side tool's route, with the server that runs it. */
type Route = Extract<ToolRoute, { kind: 'mcp_call' | 'mcp_approval_request' }> & { readonly server: PlannedServer };

type Listing = { readonly ok: true; readonly tools: readonly ListedTool[] } | { readonly ok: false; readonly error: string };

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class AgentLoop implements AgentHooks {
  readonly #plan: AgentPlan;
  readonly #transform: PlannedTransform;
  readonly #sessions: McpSessions;
  readonly #maxRounds: number;
  readonly #abort = new AbortController();
  /** Function name -> the tool it stands for, while offered to vLLM. */
  readonly #routes = new Map<string, Route>();
  #functions: Json[] = [];
  #firstToolChoice: unknown;
  #rounds = 0;
  #callsMade = 0;
  #nextBody: Buffer | undefined;
  /** Listing tools or running calls: no vLLM call is in progress. */
  #busy = false;

  constructor(options: AgentLoopOptions) {
    this.#plan = options.plan;
    this.#transform = options.transform;
    this.#sessions = options.sessions;
    this.#maxRounds = options.maxRounds;
    this.#firstToolChoice = options.plan.request.toolChoice;
    options.transform.agent = this;
  }

  get #normalizer(): StreamNormalizer {
    return this.#transform.streamNormalizer();
  }

  /** True while the loop works between vLLM calls (no relay is reading). */
  get busy(): boolean {
    return this.#busy;
  }

  /** Stops every tool call in flight (the run was cancelled, failed or lost its client). */
  abort(): void {
    this.#abort.abort();
  }

  /** The request of the next vLLM call, once a turn ended with calls to answer. */
  takeNextBody(): Buffer | undefined {
    const body = this.#nextBody;
    this.#nextBody = undefined;
    return body;
  }

  route(functionName: string): ToolRoute | undefined {
    return this.#routes.get(functionName);
  }

  /** Opens the stream, lists tools, runs approved calls; resolves with vLLM's first request. */
  async begin(emit: Emit): Promise<Buffer> {
    this.#busy = true;
    try {
      const normalizer = this.#normalizer;
      const out: string[] = [];
      normalizer.open(out);
      const listings = this.#plan.servers.map((server) => this.#startListing(server, out));
      emit(out);
      const listed = await Promise.all(
        listings.map(async ({ server, item, listing }) => {
          const result = await listing;
          if (item !== undefined) emit(this.#finishListing(server, item, result));
          return { server, tools: result.ok ? result.tools : [] };
        }),
      );
      this.#offer(listed);
      await Promise.all(this.#plan.approved.map((call) => this.#runApproved(call, emit)));
      return this.#body(this.#firstToolChoice);
    } finally {
      this.#busy = false;
    }
  }

  async turnEnded(turn: TurnEnd): Promise<boolean> {
    this.#busy = true;
    try {
      if (turn.calls.length > 0) this.#rounds += 1;
      await Promise.all(
        turn.calls.map(async (item) => {
          const result = await this.#runCall(item);
          const out: string[] = [];
          this.#normalizer.completeToolCall(out, item, result);
          turn.emit(out);
        }),
      );
      if (turn.endsResponse || turn.calls.length === 0 || this.#abort.signal.aborted) return false;
      const budget = this.#plan.maxToolCalls;
      if (this.#rounds >= this.#maxRounds || (budget !== undefined && this.#callsMade >= budget)) {
        // The model must answer with what it has.
        this.#routes.clear();
        this.#functions = [];
      }
      this.#nextBody = this.#body(laterToolChoice(this.#firstToolChoice));
      return true;
    } finally {
      this.#busy = false;
    }
  }

  // --- listing ------------------------------------------------------------------------

  #startListing(server: PlannedServer, out: string[]): { server: PlannedServer; item: ItemState | undefined; listing: Promise<Listing> } {
    if (server.listed !== undefined) return { server, item: undefined, listing: Promise.resolve({ ok: true, tools: server.listed }) };
    const normalizer = this.#normalizer;
    const item = normalizer.addGatewayItem(out, 'mcp_list_tools', (id) => ({ id, type: 'mcp_list_tools', server_label: server.label, tools: [] }));
    normalizer.itemEvent(out, 'response.mcp_list_tools.in_progress', item);
    const listing = this.#sessions.listTools(server.target, this.#abort.signal).then(
      (tools: McpToolInfo[]): Listing => ({ ok: true, tools: tools.filter((tool) => allowed(server, tool)) }),
      (error: unknown): Listing => ({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
    return { server, item, listing };
  }

  #finishListing(server: PlannedServer, item: ItemState, result: Listing): string[] {
    const out: string[] = [];
    const normalizer = this.#normalizer;
    normalizer.itemEvent(out, result.ok ? 'response.mcp_list_tools.completed' : 'response.mcp_list_tools.failed', item);
    const final: Json = { id: item.id, type: 'mcp_list_tools', server_label: server.label, tools: result.ok ? result.tools : [] };
    if (!result.ok) final['error'] = result.error;
    normalizer.finishGatewayItem(out, item, final);
    return out;
  }

  /** Each allowed tool as a function vLLM can call, under a name no other tool has. */
  #offer(listed: ReadonlyArray<{ server: PlannedServer; tools: readonly ListedTool[] }>): void {
    const taken = new Set<string>();
    for (const tool of this.#plan.request.clientTools) if (isObject(tool) && typeof tool['name'] === 'string') taken.add(tool['name']);
    for (const { server, tools } of listed) {
      for (const tool of tools) {
        if (!allowed(server, tool)) continue;
        const name = uniqueFunctionName(toolFunctionName(server.label, tool.name), taken);
        this.#routes.set(name, {
          kind: needsApproval(server.approval, tool) ? 'mcp_approval_request' : 'mcp_call',
          serverLabel: server.label,
          name: tool.name,
          server,
        });
        this.#functions.push({
          type: 'function',
          name,
          description: tool.description ?? `The tool ${tool.name} of the MCP server ${server.label}.`,
          parameters: isObject(tool.input_schema) ? tool.input_schema : { type: 'object', properties: {} },
          strict: false,
        });
      }
    }
    this.#firstToolChoice = this.#translateToolChoice(this.#firstToolChoice);
  }

  /** tool_choice naming an MCP tool ({type: "mcp", server_label, name}) names its function. */
  #translateToolChoice(choice: unknown): unknown {
    if (!isObject(choice) || choice['type'] !== 'mcp') return choice;
    for (const [name, route] of this.#routes) {
      if (route.serverLabel === choice['server_label'] && (choice['name'] === undefined || choice['name'] === route.name)) {
        return { type: 'function', name };
      }
    }
    return 'auto';
  }

  // --- calls --------------------------------------------------------------------------

  async #runApproved(call: ApprovedCall, emit: Emit): Promise<void> {
    const normalizer = this.#normalizer;
    const route: ToolRoute = { kind: 'mcp_call', serverLabel: call.serverLabel, name: call.name };
    const out: string[] = [];
    const item = normalizer.addGatewayItem(
      out,
      'mcp_call',
      (id) =>
        mcpCallItem({
          id,
          status: 'in_progress',
          approvalRequestId: call.approvalRequestId,
          arguments: '',
          error: null,
          name: call.name,
          output: null,
          serverLabel: call.serverLabel,
        }),
      route,
    );
    item.finalArguments = call.arguments;
    normalizer.itemEvent(out, 'response.mcp_call.in_progress', item);
    normalizer.itemEvent(out, 'response.mcp_call_arguments.delta', item, { delta: call.arguments });
    normalizer.itemEvent(out, 'response.mcp_call_arguments.done', item, { arguments: call.arguments });
    emit(out);
    const server = this.#plan.servers.find((planned) => planned.label === call.serverLabel);
    const result: ToolResult =
      server === undefined
        ? { ok: false, error: `No MCP server labelled '${call.serverLabel}' is among this request's tools; send it again to run the approved call.` }
        : await this.#call(server, call.name, call.arguments);
    const done: string[] = [];
    normalizer.completeToolCall(done, item, result, call.approvalRequestId);
    emit(done);
  }

  #runCall(item: ItemState): Promise<ToolResult> {
    // The normalizer keeps the route this loop gave (route()), server included.
    const route = item.route as Route | undefined;
    if (route === undefined) return Promise.resolve({ ok: false, error: 'The tool is not offered.' });
    return this.#call(route.server, route.name, item.finalArguments ?? '');
  }

  /** One call, within max_tool_calls; its arguments must be a JSON object. */
  async #call(server: PlannedServer, name: string, rawArguments: string): Promise<ToolResult> {
    const budget = this.#plan.maxToolCalls;
    if (budget !== undefined && this.#callsMade >= budget) {
      return { ok: false, error: `Not run: this response reached its max_tool_calls (${budget}).` };
    }
    this.#callsMade += 1;
    let args: unknown;
    try {
      args = rawArguments.trim() === '' ? {} : JSON.parse(rawArguments);
    } catch {
      return { ok: false, error: `Not run: the arguments are not JSON: ${rawArguments.slice(0, 200)}` };
    }
    if (!isObject(args)) return { ok: false, error: 'Not run: the arguments must be a JSON object.' };
    return this.#sessions.callTool(server.target, name, args, this.#abort.signal);
  }

  /** A vLLM request: the input, then this response's finished items (calls with outputs). */
  #body(toolChoice: unknown): Buffer {
    const turnItems: string[] = [];
    for (const item of this.#normalizer.finishedItems()) {
      const upstream = storedOutputItem(item).upstream;
      if (upstream !== NOT_SENT_UPSTREAM) turnItems.push(upstream);
    }
    return turnRequestBody(this.#plan.request, turnItems, this.#functions, toolChoice);
  }
}

function allowed(server: PlannedServer, tool: { name: string; annotations: unknown }): boolean {
  return server.allowedTools === undefined || filterTakes(server.allowedTools, tool);
}

/** After the first call, a choice that forces a tool would force one for ever: auto. */
function laterToolChoice(choice: unknown): unknown {
  return choice === 'required' || isObject(choice) ? 'auto' : choice;
}
