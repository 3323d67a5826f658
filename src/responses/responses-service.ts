// The stateful side of /v1/responses: what to send vLLM for a create request (its
// history, from a previous response or a conversation, followed by the new input), how
// to relay and store the answer, and the stored-response endpoints.
import { GatewayError } from '../errors.ts';
import type { McpServerPolicy } from '../mcp/server-policy.ts';
import type { LogSource } from '../observability/logger.ts';
import type { History, PageQuery, SaveOutcome, SaveResponse, StoredItem, Store, UnconfirmedContext } from '../store/store.ts';
import type { BufferedTransform, EventStreamTransform, ResponseTransformer, UpstreamHead } from '../upstream/relay.ts';
import type { Affinity } from '../upstream/upstream-client.ts';
import type { CreateResponseRequest, RequestLimits } from './create-request.ts';
import { checkIdShape, parseCompactRequest, tooManyInputItems } from './create-request.ts';
import {
  compactedResponse,
  compactionTail,
  compactionThreshold,
  compactionUpstreamOf,
  estimatedTokens,
  fromLatestCompaction,
  summaryOf,
  summaryRequestBody,
  userMessagesOf,
} from './compaction.ts';
import { ID_PREFIX, itemIdPrefix, newId } from './ids.ts';
import type { StateSeal } from './state-seal.ts';
import {
  NOT_SENT_UPSTREAM,
  reasoningUpstream,
  planInputItems,
  referencedItemIds,
  resolveInputItems,
  storedOutputItem,
  type Json,
  type PlannedItem,
} from './items.ts';
import { InvalidUpstreamReply, JsonNormalizer } from './json-normalizer.ts';
import { cursorNotFound, renderList } from './list-query.ts';
import { plannedServer, turnRequestParts, type TurnRequestParts, type AgentPlan, type ApprovedCall, type ListedTool, type PlannedServer } from './agent-plan.ts';
import { parseApprovalRule, parseMcpDeclarations, parseToolFilter, type McpDeclaration } from './mcp-declarations.ts';
import { callPairUpstream, declinedOutput, toolFunctionName } from './mcp-items.ts';
import type { NewItem } from '../store/store.ts';
import type { ResponseFacts } from './response-object.ts';
import { RequestParser } from './request-parser.ts';
import { StreamNormalizer, type AgentHooks, type StreamHooks } from './stream-normalizer.ts';
import { foldSystemMessages } from './system-messages.ts';
import { noteAppended } from './history-marks.ts';
import { planClientTools, type ClientToolPlan, type UnsupportedTools } from './client-tools.ts';
import type { ToolRoute } from './output-items.ts';

export interface ResponsesOptions {
  readonly store: Store;
  /** --raw-upstream-fields: keep vLLM's private fields in responses. */
  readonly keepRawFields: boolean;
  readonly limits: RequestLimits;
  /** Where MCP tools may reach (--mcp-servers, --mcp-allow). */
  readonly mcp: McpServerPolicy;
  /** Hosted tools vLLM cannot run: left out of its request, or refused (--unsupported-tools). */
  readonly unsupportedTools: UnsupportedTools;
  /** Seals what clients carry for the gateway (encrypted reasoning, compaction items). */
  readonly seal: StateSeal;
}

/** What the forward step sends vLLM, and how the answer is normalized and stored. */
export interface CreatePlan {
  /** The client's bytes, or the new body in parts (sent one after another). */
  readonly body: Buffer | readonly Buffer[];
  readonly facts: ResponseFacts;
  readonly transformer: PlannedTransform;
  /** Request headers not to forward (the gateway reads the answer, so no compression). */
  readonly dropHeaders: ReadonlySet<string>;
  readonly addHeaders: readonly string[];
  /** What storing the response needs besides its output (kept with a background run, so
   * that another process can store it if this one dies). */
  readonly pending: PendingSave;
  /** Set when the response uses MCP tools: the gateway runs its tool loop. */
  readonly agent: AgentPlan | undefined;
  /** The history the request continues, as vLLM got it (what a WebSocket keeps of a
   * `store: false` response, with its input and output, to continue it without storage). */
  readonly historyUpstream: Buffer;
  /** Set when context_management's threshold is crossed: the conversation is summarised
   * before the response runs (http/server-compaction.ts). */
  readonly compaction?: PlannedCompaction | undefined;
  /** Which model server replica the request belongs to, when it continues a chain. */
  readonly affinity?: Affinity | undefined;
  /** Set when the plan was made on a context this process keeps, which the store has yet to
   * confirm (PlanOptions.holdsAnswer): vLLM may be called at once, but nothing of its
   * answer may be released before this resolves true. False: the context was not the
   * store's any more; the request is to be planned again, its history read. */
  readonly confirmation?: Promise<boolean> | undefined;
}

/** How planCreate reads the history a request continues. */
export interface PlanOptions {
  /** Histories the caller holds itself (a WebSocket's). */
  readonly local?: LocalHistories | undefined;
  /** The caller holds vLLM's answer until CreatePlan.confirmation resolves (a foreground
   * POST): a continuation with a kept context is planned on it before the store has
   * confirmed it, and its check runs while vLLM is called (one database round trip off
   * the request's latency). */
  readonly holdsAnswer?: boolean | undefined;
}

/** A server-side compaction to run before the response: vLLM's summary request, and the
 * plan's request once the summary is known (its upstream form first, then the new items
 * from the last user message on). */
export interface PlannedCompaction {
  readonly request: Buffer;
  apply(summaryUpstream: string): { readonly body: Buffer | readonly Buffer[]; readonly addHeaders: readonly string[] } | { readonly agentRequest: TurnRequestParts };
}

/** A compaction, planned: vLLM's request, and the user messages the answer lists. */
export interface CompactPlan {
  readonly body: Buffer;
  readonly userMessages: readonly Json[];
  /** The request's headers not to forward, and the body's own (as a create plan's). */
  readonly dropHeaders: ReadonlySet<string>;
  readonly addHeaders: readonly string[];
}

/** Histories a caller holds itself (a WebSocket's `store: false` responses), by response id. */
export type LocalHistories = (responseId: string) => Buffer | undefined;

/** A SaveResponse without what only the end of the response knows. */
export type PendingSave = Omit<SaveResponse, 'status' | 'model' | 'body' | 'outputItems' | 'createdAt'>;

/** A context the store kept for the next turn: what is known of the bytes it continued
 * carries over, so the next turn searches only this turn's items (history-marks.ts). */
function noteKeptContext(outcome: SaveOutcome): void {
  if (outcome.keptContext !== undefined) noteAppended(outcome.keptContext.continued, outcome.keptContext.upstream);
}

/** For a promise whose rejection is read later, or not at all (see #unconfirmedContext). */
function ignoreRejection(): void {}

/** Picks the normalizer once vLLM's status is known, and remembers it: a run that is
 * cancelled or fails asks it for the response so far. */
export class PlannedTransform implements ResponseTransformer, StreamHooks {
  readonly #stream: boolean;
  readonly #facts: ResponseFacts;
  readonly #save: StreamHooks;
  readonly #log: LogSource;
  readonly #clientRoutes: ((functionName: string) => ToolRoute | undefined) | undefined;
  #normalizer: StreamNormalizer | undefined;
  /** The status of the final response, once it was handed over to be stored. */
  finalStatus: string | undefined;
  /** The final response and its JSON, once stored (what a tool loop's non-streamed client
   * gets, what a WebSocket keeps of a `store: false` response). */
  stored: { readonly response: Json; readonly json: string } | undefined;
  /** A tool loop's hooks, set before the run starts (runs/agent-loop.ts). */
  agent: AgentHooks | undefined;
  /** The model server replica that answered (several --llm-api-base), stored with the
   * response so that its chain's next turn goes there too. */
  servedBy: string | undefined;

  constructor(
    stream: boolean,
    facts: ResponseFacts,
    hooks: StreamHooks,
    log: LogSource,
    clientRoutes?: (functionName: string) => ToolRoute | undefined,
  ) {
    this.#stream = stream;
    this.#facts = facts;
    this.#save = hooks;
    this.#log = log;
    this.#clientRoutes = clientRoutes;
  }

  select(head: UpstreamHead): EventStreamTransform | BufferedTransform | undefined {
    // vLLM's own error answers pass through unchanged.
    if (head.status < 200 || head.status >= 300) return undefined;
    if (this.#stream) {
      return head.isEventStream
        ? this.streamNormalizer()
        : new InvalidUpstreamReply('The model server answered a streaming request without an event stream.');
    }
    return new JsonNormalizer(this.#facts, this, this.#clientRoutes);
  }

  /** The stream's normalizer; made now when vLLM has not answered (a run failed or
   * cancelled before it did). */
  streamNormalizer(): StreamNormalizer {
    this.#normalizer ??= new StreamNormalizer(this.#facts, this, this.#log, this.agent, this.#clientRoutes);
    return this.#normalizer;
  }

  /** Stores the final response (what the normalizers call before the terminal event). */
  finish(response: Json, json: string): Promise<void> | undefined {
    this.finalStatus = String(response['status']);
    const saved = this.#save.finish(response, json);
    // Only what was stored is final (a failed save fails the response).
    if (saved === undefined) this.stored = { response, json };
    return saved?.then(() => {
      this.stored = { response, json };
    });
  }
}

// The gateway reads vLLM's answer (so asks for it uncompressed) and sends a body it has
// read: decoded, if the client compressed it.
const DROP_FOR_RAW_BODY: ReadonlySet<string> = new Set(['accept-encoding', 'content-encoding']);
const DROP_FOR_NEW_BODY: ReadonlySet<string> = new Set(['accept-encoding', 'content-encoding', 'content-type']);
const JSON_CONTENT_TYPE = ['content-type', 'application/json'] as const;
const NO_HOOK: StreamHooks = { finish: () => undefined };
/** A history from this size on goes to vLLM as the store's bytes, not copied into one body. */
const SEND_IN_PARTS_FROM_BYTES = 256 * 1024;
const NO_HISTORY: History = { seqs: [], upstream: Buffer.alloc(0), tooLong: false };

/**
 * The replica a request belongs to (several --llm-api-base; vLLM's prefix cache holds its
 * chain there): the one that answered the response it continues, as stored; else a key
 * every gateway hashes alike: its prompt_cache_key, its conversation, the response it
 * continues (answered before replicas were recorded).
 */
function affinityOf(request: CreateResponseRequest, history: History): Affinity | undefined {
  const cacheKey = request.body['prompt_cache_key'];
  const key = typeof cacheKey === 'string' && cacheKey.length > 0 ? cacheKey : (request.conversationId ?? request.previousResponseId ?? undefined);
  const replica = history.replica ?? undefined;
  return replica === undefined && key === undefined ? undefined : { replica, key };
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ResponsesService {
  readonly #store: Store;
  readonly #keepRawFields: boolean;
  readonly #maxInputItems: number;
  readonly #limits: RequestLimits;
  readonly #parser: RequestParser;
  readonly #mcp: McpServerPolicy;
  readonly #unsupportedTools: UnsupportedTools;
  readonly #seal: StateSeal;
  /** Hosted tool types dropped so far (each is logged once). */
  readonly #droppedLogged = new Set<string>();

  constructor(options: ResponsesOptions) {
    this.#mcp = options.mcp;
    this.#unsupportedTools = options.unsupportedTools;
    this.#seal = options.seal;
    this.#store = options.store;
    this.#keepRawFields = options.keepRawFields;
    this.#maxInputItems = options.limits.maxInputItems;
    this.#limits = options.limits;
    this.#parser = new RequestParser(options.limits);
  }

  /** A valid create request, else a 400 (large bodies are read on a parser thread). */
  parseCreate(rawBody: Buffer): Promise<CreateResponseRequest> {
    return this.#parser.parse(rawBody);
  }

  /** Stops the parser threads. */
  close(): Promise<void> {
    return this.#parser.close();
  }

  /** Decides what goes upstream for a create request, loading its history if it has one. */
  async planCreate(tenant: string, request: CreateResponseRequest, log: LogSource, options: PlanOptions = {}): Promise<CreatePlan> {
    const unconfirmed = options.holdsAnswer === true ? this.#unconfirmedContext(tenant, request) : undefined;
    if (unconfirmed === undefined) return this.#planCreate(tenant, request, log, options.local, undefined);
    try {
      const plan = await this.#planCreate(tenant, request, log, options.local, unconfirmed);
      // A tool loop or a compaction calls vLLM before the run: they wait for the check.
      if (plan.confirmation !== undefined || (await unconfirmed.confirmed)) return plan;
    } catch (error) {
      // What a read history would have refused first is told first (a response gone: 404).
      if (await unconfirmed.confirmed) throw error;
    }
    return this.#planCreate(tenant, request, log, options.local, undefined);
  }

  /** A continuation's kept context, its check under way; none for a request longer than
   * --max-input-items allows with it (the read tells gone from too long). */
  #unconfirmedContext(tenant: string, request: CreateResponseRequest): UnconfirmedContext | undefined {
    if (request.previousResponseId === null) return undefined;
    const unconfirmed = this.#store.keptResponseContext?.(tenant, request.previousResponseId, Date.now(), this.#maxInputItems - request.inputItemCount);
    // Handled here, so that a rejection is never unhandled on paths that stop before
    // waiting for it (a refusal while starting); those that wait see it still.
    unconfirmed?.confirmed.catch(ignoreRejection);
    return unconfirmed;
  }

  async #planCreate(tenant: string, request: CreateResponseRequest, log: LogSource, local: LocalHistories | undefined, unconfirmed: UnconfirmedContext | undefined): Promise<CreatePlan> {
    const facts: ResponseFacts = {
      id: newId(ID_PREFIX.response),
      request: request.body,
      store: request.store,
      background: request.background,
      previousResponseId: request.previousResponseId,
      conversationId: request.conversationId,
      keepRawFields: this.#keepRawFields,
      leadingItems: [],
      sealReasoning: includes(request.body['include'], ENCRYPTED_REASONING) ? (item) => this.#seal.seal(tenant, 'reasoning', { summary: item['summary'] ?? [], content: item['content'] ?? [] }) : undefined,
    };
    const declarations = parseMcpDeclarations(request.body['tools']);
    const threshold = compactionThreshold(request.body['context_management']);
    const clientTools = planClientTools(request.body['tools'], request.body['tool_choice'], this.#unsupportedTools);
    this.#logDropped(clientTools, log);
    // store: false without history: nothing to load or keep, and the client's bytes go
    // upstream untouched (they already say store: false), unless its tools must change.
    if (
      !request.store &&
      request.previousResponseId === null &&
      request.conversationId === null &&
      clientTools.upstreamTools === undefined &&
      threshold === undefined &&
      !inputNeedsRewriting(request.body['input'])
    ) {
      return {
        body: request.rawBody,
        facts,
        transformer: new PlannedTransform(request.stream, facts, NO_HOOK, log),
        dropHeaders: DROP_FOR_RAW_BODY,
        addHeaders: [],
        pending: this.#pending(tenant, facts, NO_HISTORY, []),
        agent: undefined,
        historyUpstream: NO_HISTORY.upstream,
        affinity: affinityOf(request, NO_HISTORY),
      };
    }

    // The history is read only if input and history fit --max-input-items together.
    const held = request.previousResponseId === null ? undefined : local?.(request.previousResponseId);
    const history =
      held !== undefined
        ? { seqs: [], upstream: held, tooLong: false }
        : (unconfirmed?.history ?? (await this.#loadHistory(tenant, request, this.#maxInputItems - request.inputItemCount)));
    if (history.tooLong) throw tooManyInputItems(this.#maxInputItems);
    const planned = request.planned ?? planInputItems(request.body['input']);
    const inputItems = resolveInputItems(planned, await this.#loadReferences(tenant, planned));
    this.#unsealItems(tenant, inputItems);

    const agentInput = declarations.length > 0 || inputItems.some((item) => item.type === 'mcp_approval_response');
    if (agentInput) return this.#planAgent(tenant, request, facts, declarations, clientTools, history, inputItems, log, threshold);

    // What a server-side compaction summarised is not sent again.
    const current = fromLatestCompaction(history.upstream, upstreamParts(inputItems));
    const folded = foldSystemMessages(request.body['instructions'], current.history, current.newItems);
    const {
      input: _input,
      previous_response_id: _previous,
      conversation: _conversation,
      store: _store,
      background: _background,
      ...rest
    } = request.body;
    // vLLM gets one stateless request: the history inline, and store: false so it keeps
    // nothing. A background response is read from vLLM as a stream: its run logs events.
    // Tools it cannot take as they are go as functions (client-tools.ts).
    // `rest` is this request's own copy.
    const fields: Record<string, unknown> = rest;
    if (folded.instructions !== undefined) fields['instructions'] = folded.instructions;
    if (clientTools.upstreamTools !== undefined) {
      if (clientTools.upstreamTools.length > 0) fields['tools'] = clientTools.upstreamTools;
      else delete fields['tools'];
      if (clientTools.toolChoice === undefined || clientTools.upstreamTools.length === 0) delete fields['tool_choice'];
      else fields['tool_choice'] = clientTools.toolChoice;
    }
    delete fields['context_management'];
    const restJson = JSON.stringify(request.background ? { ...rest, stream: true, store: false } : { ...rest, store: false });
    const build = (historyBytes: Buffer, newItems: readonly string[]): { body: Buffer | readonly Buffer[]; addHeaders: readonly string[] } => {
      // The history goes as the bytes the store handed over: a long one is neither decoded,
      // joined nor copied here.
      const separator = historyBytes.length > 0 && newItems.length > 0 ? ',' : '';
      const parts = [Buffer.from('{"input":['), historyBytes, Buffer.from(`${separator}${newItems.join(',')}],${restJson.slice(1)}`)];
      return {
        // One write for a usual body; a long history is sent as it is, in parts.
        body: historyBytes.length < SEND_IN_PARTS_FROM_BYTES ? Buffer.concat(parts) : parts,
        addHeaders: [...JSON_CONTENT_TYPE, 'content-length', String(parts.reduce((sum, part) => sum + part.length, 0))],
      };
    };
    const { body, addHeaders } = build(folded.history, folded.newItems);
    const compaction = plannedCompaction(threshold, request.body['model'], fields['instructions'], folded, (summary) => build(Buffer.alloc(0), [summary, ...compactionTail(folded.newItems)]));

    const pending = this.#pending(tenant, facts, history, inputItems);
    const hooks: StreamHooks = { finish: (response, json) => this.#save(pending, response, json, transformer.servedBy) };
    const transformer = new PlannedTransform(request.stream || request.background, facts, hooks, log, clientTools.route);
    return {
      body,
      facts,
      transformer,
      dropHeaders: DROP_FOR_NEW_BODY,
      addHeaders,
      pending,
      agent: undefined,
      historyUpstream: history.upstream,
      compaction,
      affinity: affinityOf(request, history),
      confirmation: compaction === undefined ? unconfirmed?.confirmed : undefined,
    };
  }

  /**
   * A response with MCP tools: vLLM is called once per round of tool calls, each time
   * with the whole input (history, new items, then the response's own items so far), so
   * the body is built per turn by the run. Here: which servers, what the history already
   * listed, and what the client decided on earlier approval requests.
   */
  async #planAgent(
    tenant: string,
    request: CreateResponseRequest,
    facts: ResponseFacts,
    declarations: readonly McpDeclaration[],
    clientTools: ClientToolPlan,
    history: History,
    inputItems: NewItem[],
    log: LogSource,
    threshold: number | undefined,
  ): Promise<CreatePlan> {
    const targets = declarations.map((declaration) =>
      this.#mcp.resolve({
        label: declaration.label,
        url: declaration.url,
        headers: declaration.headers,
        authorization: declaration.authorization,
        param: declaration.param,
      }),
    );
    const listed = await this.#listedTools(tenant, history, inputItems);
    const servers: PlannedServer[] = declarations.map((declaration, index) =>
      plannedServer(declaration, targets[index] as PlannedServer['target'], listed.get(declaration.label), {
        filter: (value) => parseToolFilter(value, `${declaration.param}.allowed_tools`, true),
        approval: (value) => parseApprovalRule(value, `${declaration.param}.require_approval`),
      }),
    );
    const approved = await this.#decideApprovals(tenant, inputItems);
    const current = fromLatestCompaction(history.upstream, upstreamParts(inputItems));
    const folded = foldSystemMessages(request.body['instructions'], current.history, current.newItems);
    const { context_management: _contextManagement, ...fields } = request.body;
    const body = folded.instructions === undefined ? fields : { ...fields, instructions: folded.instructions };
    const maxToolCalls = request.body['max_tool_calls'];
    if (maxToolCalls !== undefined && maxToolCalls !== null && (!Number.isSafeInteger(maxToolCalls) || (maxToolCalls as number) < 0)) {
      throw new GatewayError('invalid_request', "Invalid 'max_tool_calls': expected a whole number >= 0.", { param: 'max_tool_calls' });
    }
    const pending = this.#pending(tenant, facts, history, inputItems);
    const hooks: StreamHooks = { finish: (response, json) => this.#save(pending, response, json, transformer.servedBy) };
    // vLLM's answers are read as streams whatever the client asked: events are how the
    // loop sees calls as they come.
    const transformer = new PlannedTransform(true, facts, hooks, log, clientTools.route);
    return {
      body: Buffer.alloc(0),
      facts,
      transformer,
      dropHeaders: DROP_FOR_NEW_BODY,
      addHeaders: [...JSON_CONTENT_TYPE],
      pending,
      agent: {
        servers,
        approved,
        maxToolCalls: typeof maxToolCalls === 'number' ? maxToolCalls : undefined,
        request: turnRequestParts(body, folded.history, folded.newItems, clientTools),
      },
      historyUpstream: history.upstream,
      affinity: affinityOf(request, history),
      compaction: plannedCompaction(threshold, request.body['model'], body['instructions'], folded, (summary) => ({
        agentRequest: turnRequestParts(body, Buffer.alloc(0), [summary, ...compactionTail(folded.newItems)], clientTools),
      })),
    };
  }

  /** Items that come back sealed (reasoning, compaction) go to vLLM opened: 400 if a seal
   * does not open. Items are in input order: their index names the bad one. */
  #unsealItems(tenant: string, inputItems: NewItem[]): void {
    for (const [index, item] of inputItems.entries()) {
      if ((item.type !== 'reasoning' && item.type !== 'compaction') || !item.payload.includes('"encrypted_content"')) continue;
      const display = JSON.parse(item.payload) as Json;
      if (typeof display['encrypted_content'] !== 'string') continue;
      const param = `input[${index}].encrypted_content`;
      const upstream =
        item.type === 'reasoning'
          ? reasoningUpstream(item.id, this.#seal.unseal(tenant, 'reasoning', display['encrypted_content'], param))
          : openedCompaction(this.#seal.unseal(tenant, 'compaction', display['encrypted_content'], param));
      inputItems[index] = { id: item.id, type: item.type, payload: item.payload, upstream };
    }
  }

  /**
   * POST /v1/responses/compact, before vLLM: the conversation (a previous response's and
   * the input), and the request that asks vLLM to summarise it.
   */
  async planCompact(tenant: string, rawBody: Buffer): Promise<CompactPlan> {
    const request = parseCompactRequest(rawBody, this.#limits);
    const history = await this.#loadHistory(tenant, request, this.#maxInputItems - request.inputItemCount);
    if (history.tooLong) throw tooManyInputItems(this.#maxInputItems);
    const planned = planInputItems(request.body['input']);
    const inputItems = resolveInputItems(planned, await this.#loadReferences(tenant, planned));
    this.#unsealItems(tenant, inputItems);
    const current = fromLatestCompaction(history.upstream, upstreamParts(inputItems));
    const conversation = [...(current.history.length > 0 ? (JSON.parse(`[${current.history.toString('utf8')}]`) as Json[]) : []), ...current.newItems.map((part) => JSON.parse(part) as Json)];
    if (conversation.length === 0) throw new GatewayError('invalid_request', 'There is nothing to compact: send input, or a previous_response_id.', { param: 'input' });
    const folded = foldSystemMessages(request.body['instructions'], current.history, current.newItems);
    const body = summaryRequestBody(request.body['model'], folded.instructions ?? request.body['instructions'], folded.history, folded.newItems);
    return { body, userMessages: userMessagesOf(conversation), dropHeaders: DROP_FOR_NEW_BODY, addHeaders: JSON_CONTENT_TYPE };
  }

  /** The compacted response from vLLM's answer: the user messages, then the summary sealed. */
  finishCompact(tenant: string, plan: CompactPlan, upstream: Json): string {
    const sealed = this.#seal.seal(tenant, 'compaction', { summary: summaryOf(upstream), scope: 'earlier' });
    return JSON.stringify(compactedResponse(plan.userMessages, sealed, upstream));
  }

  /** A server-side compaction from vLLM's summary: the item the response shows first, and
   * the summary's upstream form for the request that follows. */
  serverCompaction(tenant: string, upstream: Json): { readonly item: Json; readonly upstream: string } {
    const summary = summaryOf(upstream);
    const item = { id: newId(itemIdPrefix('compaction')), type: 'compaction', encrypted_content: this.#seal.seal(tenant, 'compaction', { summary, scope: 'all' }) };
    return { item, upstream: compactionUpstreamOf(summary, 'all') };
  }

  /** An output item's stored forms (a compaction's upstream form is its summary, opened). */
  storedOutput(tenant: string, item: Json): NewItem {
    return item['type'] === 'compaction' ? this.#storedCompaction(tenant, item) : storedOutputItem(item);
  }

  /** An output compaction item's stored forms: vLLM gets it again as its summary. */
  #storedCompaction(tenant: string, item: Json): NewItem {
    const opened = this.#seal.unseal(tenant, 'compaction', String(item['encrypted_content']), 'output');
    const id = String(item['id']);
    return { id, type: 'compaction', payload: JSON.stringify(item), upstream: compactionUpstreamOf(String(opened['summary']), opened['scope'] === 'all' ? 'all' : 'earlier') };
  }

  /** Each hosted tool type left out of vLLM's requests is logged once per process. */
  #logDropped(clientTools: ClientToolPlan, log: LogSource): void {
    for (const type of clientTools.dropped) {
      if (this.#droppedLogged.has(type)) continue;
      this.#droppedLogged.add(type);
      log().warn({ tool_type: type }, 'a hosted tool the model server cannot run was left out of its request (--unsupported-tools drop; logged once per type)');
    }
  }

  /** Tools stored mcp_list_tools items already list, by server label (the last one wins). */
  async #listedTools(tenant: string, history: History, inputItems: readonly NewItem[]): Promise<Map<string, readonly ListedTool[]>> {
    const payloads = (await this.#store.getHistoryItemsOfType(tenant, history.seqs, 'mcp_list_tools')).map((item) => item.payload);
    for (const item of inputItems) if (item.type === 'mcp_list_tools') payloads.push(item.payload);
    const listed = new Map<string, readonly ListedTool[]>();
    for (const payload of payloads) {
      const item = JSON.parse(payload) as Json;
      // A failed listing lists nothing: the next response tries again.
      if (typeof item['server_label'] !== 'string' || (typeof item['error'] === 'string' && item['error'].length > 0)) continue;
      if (Array.isArray(item['tools'])) listed.set(item['server_label'], item['tools'].filter(isObject) as unknown as ListedTool[]);
    }
    return listed;
  }

  /**
   * Each mcp_approval_response answers a request stored earlier (or sent in the input):
   * an approved call is run before the model's next turn; a refused one goes to vLLM as
   * the call with an output saying it was refused.
   */
  async #decideApprovals(tenant: string, inputItems: NewItem[]): Promise<ApprovedCall[]> {
    const responses = inputItems.filter((item) => item.type === 'mcp_approval_response');
    if (responses.length === 0) return [];
    const requests = new Map<string, Json>();
    for (const item of inputItems) if (item.type === 'mcp_approval_request') requests.set(item.id, JSON.parse(item.payload) as Json);
    const missing = responses.map((item) => String((JSON.parse(item.payload) as Json)['approval_request_id'])).filter((id) => !requests.has(id));
    for (const stored of await this.#store.getItemsById(tenant, missing)) {
      if (stored.type === 'mcp_approval_request') requests.set(stored.id, JSON.parse(stored.payload) as Json);
    }
    const approved: ApprovedCall[] = [];
    for (const [index, item] of inputItems.entries()) {
      if (item.type !== 'mcp_approval_response') continue;
      const answer = JSON.parse(item.payload) as Json;
      const requestId = String(answer['approval_request_id']);
      const asked = requests.get(requestId);
      if (asked === undefined) {
        throw new GatewayError('item_not_found', `Approval request with id '${requestId.slice(0, 100)}' not found.`, {
          param: 'input',
        });
      }
      const call: ApprovedCall = {
        approvalRequestId: requestId,
        serverLabel: String(asked['server_label']),
        name: String(asked['name']),
        arguments: typeof asked['arguments'] === 'string' ? asked['arguments'] : '{}',
      };
      if (answer['approve'] === true) approved.push(call);
      else {
        const upstream = callPairUpstream(requestId, toolFunctionName(call.serverLabel, call.name), call.arguments, declinedOutput(answer['reason']));
        inputItems[index] = { id: item.id, type: item.type, payload: item.payload, upstream };
      }
    }
    return approved;
  }

  #pending(tenant: string, facts: ResponseFacts, history: History, inputItems: PendingSave['inputItems']): PendingSave {
    return {
      tenant,
      id: facts.id,
      previousResponseId: facts.previousResponseId,
      conversationId: facts.conversationId,
      historySeqs: history.seqs,
      inputItems,
      storeResponse: facts.store,
    };
  }

  /** Stores a finished response: what the normalizers call before its terminal event, and
   * what ends a run whose process died (`pending` then comes from the run's row). */
  #save(pending: PendingSave, response: Json, json: string, replica?: string): Promise<void> | undefined {
    const output = Array.isArray(response['output']) ? response['output'].filter(isObject) : [];
    // A failed turn is kept as a response but not added to its conversation.
    const conversationId = response['status'] === 'failed' || response['status'] === 'cancelled' ? null : pending.conversationId;
    // store: false keeps nothing, unless a conversation takes the turn's items.
    if (!pending.storeResponse && conversationId === null) return undefined;
    return this.#store
      .saveResponse({
        // Listed, not spread (a spread copy costs about a microsecond).
        tenant: pending.tenant,
        id: pending.id,
        previousResponseId: pending.previousResponseId,
        historySeqs: pending.historySeqs,
        inputItems: pending.inputItems,
        storeResponse: pending.storeResponse,
        conversationId,
        createdAt: Date.now(),
        status: String(response['status']),
        model: typeof response['model'] === 'string' ? response['model'] : '',
        body: json,
        outputItems: output.map((item) => this.storedOutput(pending.tenant, item)),
        replica: replica ?? null,
      })
      .then(noteKeptContext);
  }

  /** Stores the response of a run whose process died: `pending` as its row kept it. */
  saveInterrupted(pendingJson: string, response: Json, json: string): Promise<void> {
    return this.#save(JSON.parse(pendingJson) as PendingSave, response, json) ?? Promise.resolve();
  }

  async #loadHistory(tenant: string, request: CreateResponseRequest, maxItems: number): Promise<History> {
    if (request.previousResponseId !== null) {
      const context = await this.#store.loadResponseContext(tenant, request.previousResponseId, Date.now(), maxItems);
      if (context === undefined) {
        throw new GatewayError('previous_response_not_found', `Previous response with id '${request.previousResponseId}' not found.`, {
          param: 'previous_response_id',
        });
      }
      return context;
    }
    if (request.conversationId !== null) {
      const conversation = await this.#store.loadConversationItems(tenant, request.conversationId, maxItems);
      if (conversation === undefined) {
        throw new GatewayError('conversation_not_found', `Conversation with id '${request.conversationId}' not found.`, {
          param: 'conversation',
        });
      }
      return conversation;
    }
    return NO_HISTORY;
  }

  async #loadReferences(tenant: string, planned: readonly PlannedItem[]): Promise<Map<string, StoredItem>> {
    const ids = referencedItemIds(planned);
    if (ids.length === 0) return new Map();
    return new Map((await this.#store.getItemsById(tenant, ids)).map((item) => [item.id, item]));
  }

  async getResponse(tenant: string, responseId: string): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    const body = await this.#store.getResponseBody(tenant, responseId, Date.now());
    if (body === undefined) throw notFound(responseId);
    return body;
  }

  async deleteResponse(tenant: string, responseId: string): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    if (!(await this.#store.deleteResponse(tenant, responseId, Date.now()))) throw notFound(responseId);
    return JSON.stringify({ id: responseId, object: 'response.deleted', deleted: true });
  }

  async listInputItems(tenant: string, responseId: string, query: PageQuery): Promise<string> {
    checkIdShape(responseId, ID_PREFIX.response, 'response_id');
    const page = await this.#store.listInputItems(tenant, responseId, query, Date.now());
    if (page === 'not_found') throw notFound(responseId);
    if (page === 'cursor_not_found') throw cursorNotFound(query);
    return renderList(page.items, page.hasMore);
  }
}

/** An opened compaction item's upstream form. */
function openedCompaction(opened: Json): string {
  return compactionUpstreamOf(String(opened['summary']), opened['scope'] === 'all' ? 'all' : 'earlier');
}

/** The compaction to run first when the conversation is estimated over the threshold and
 * holds something to summarise before its last user message. */
function plannedCompaction(
  threshold: number | undefined,
  model: unknown,
  instructions: unknown,
  folded: { readonly history: Buffer; readonly newItems: readonly string[] },
  apply: PlannedCompaction['apply'],
): PlannedCompaction | undefined {
  if (threshold === undefined || estimatedTokens(folded.history, folded.newItems, instructions) <= threshold) return undefined;
  if (folded.history.length === 0 && compactionTail(folded.newItems).length === folded.newItems.length) return undefined;
  return { request: summaryRequestBody(model, instructions, folded.history, folded.newItems), apply };
}

/** What vLLM gets of the items: their upstream forms, less those it must not get. */
function upstreamParts(items: readonly NewItem[]): string[] {
  const parts: string[] = [];
  for (const item of items) if (item.upstream !== NOT_SENT_UPSTREAM) parts.push(item.upstream);
  return parts;
}

const ENCRYPTED_REASONING = 'reasoning.encrypted_content';

function includes(list: unknown, value: string): boolean {
  return Array.isArray(list) && list.includes(value);
}

/**
 * Whether a stateless request's input holds an item vLLM cannot get as sent (one look over
 * the parsed items): an approval response (decided by the gateway), a sealed item (opened
 * by the gateway), a system or developer message (folded: system-messages.ts).
 */
function inputNeedsRewriting(input: unknown): boolean {
  if (!Array.isArray(input)) return false;
  for (const item of input) {
    if (!isObject(item)) continue;
    const type = item['type'];
    if (type === 'mcp_approval_response' || type === 'compaction') return true;
    if (type === 'reasoning' && typeof item['encrypted_content'] === 'string') return true;
    if (item['role'] === 'system' || item['role'] === 'developer') return true;
  }
  return false;
}

function notFound(responseId: string): GatewayError {
  return new GatewayError('response_not_found', `Response with id '${responseId}' not found.`, { param: 'response_id' });
}
