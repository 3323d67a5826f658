// The stateful side of /v1/responses: what to send vLLM for a create request (its
// history, from a previous response or a conversation, followed by the new input), how
// to relay and store the answer, and the stored-response endpoints.
import { GatewayError } from '../errors.ts';
import type { LogSource } from '../observability/logger.ts';
import type { History, PageQuery, StoredItem, Store } from '../store/store.ts';
import type { ResponseTransformer, UpstreamHead } from '../upstream/relay.ts';
import type { CreateResponseRequest, RequestLimits } from './create-request.ts';
import { checkIdShape, tooManyInputItems } from './create-request.ts';
import { ID_PREFIX, newId } from './ids.ts';
import {
  NOT_SENT_UPSTREAM,
  planInputItems,
  referencedItemIds,
  resolveInputItems,
  storedOutputItem,
  type Json,
  type PlannedItem,
} from './items.ts';
import { InvalidUpstreamReply, JsonNormalizer } from './json-normalizer.ts';
import { cursorNotFound, renderList } from './list-query.ts';
import type { ResponseFacts } from './response-object.ts';
import { RequestParser } from './request-parser.ts';
import { StreamNormalizer, type StreamHooks } from './stream-normalizer.ts';

export interface ResponsesOptions {
  readonly store: Store;
  /** --raw-upstream-fields: keep vLLM's private fields in responses. */
  readonly keepRawFields: boolean;
  readonly limits: RequestLimits;
}

/** What the forward step sends vLLM, and how it relays the answer. */
export interface CreatePlan {
  /** The client's bytes, or the new body in parts (sent one after another). */
  readonly body: Buffer | readonly Buffer[];
  readonly transformer: ResponseTransformer;
  /** Request headers not to forward (the gateway reads the answer, so no compression). */
  readonly dropHeaders: ReadonlySet<string>;
  readonly addHeaders: readonly string[];
}

const DROP_FOR_RAW_BODY: ReadonlySet<string> = new Set(['accept-encoding']);
const DROP_FOR_NEW_BODY: ReadonlySet<string> = new Set(['accept-encoding', 'content-type']);
const JSON_CONTENT_TYPE = ['content-type', 'application/json'] as const;
const NO_HOOK: StreamHooks = { finish: () => undefined };
/** A history from this size on goes to vLLM as the store's bytes, not copied into one body. */
const SEND_IN_PARTS_FROM_BYTES = 256 * 1024;
const NO_HISTORY: History = { seqs: [], upstream: Buffer.alloc(0), tooLong: false };

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ResponsesService {
  readonly #store: Store;
  readonly #keepRawFields: boolean;
  readonly #maxInputItems: number;
  readonly #parser: RequestParser;

  constructor(options: ResponsesOptions) {
    this.#store = options.store;
    this.#keepRawFields = options.keepRawFields;
    this.#maxInputItems = options.limits.maxInputItems;
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
  async planCreate(tenant: string, request: CreateResponseRequest, log: LogSource): Promise<CreatePlan> {
    const facts: ResponseFacts = {
      id: newId(ID_PREFIX.response),
      request: request.body,
      store: request.store,
      previousResponseId: request.previousResponseId,
      conversationId: request.conversationId,
      keepRawFields: this.#keepRawFields,
    };
    // store: false without history: nothing to load or keep, and the client's bytes go
    // upstream untouched (they already say store: false).
    if (!request.store && request.previousResponseId === null && request.conversationId === null) {
      return {
        body: request.rawBody,
        transformer: this.#transformer(request.stream, facts, NO_HOOK, log),
        dropHeaders: DROP_FOR_RAW_BODY,
        addHeaders: [],
      };
    }

    // The history is read only if input and history fit --max-input-items together.
    const history = await this.#loadHistory(tenant, request, this.#maxInputItems - request.inputItemCount);
    if (history.tooLong) throw tooManyInputItems(this.#maxInputItems);
    const planned = request.planned ?? planInputItems(request.body['input']);
    const inputItems = resolveInputItems(planned, await this.#loadReferences(tenant, planned));

    const newParts: string[] = [];
    for (const item of inputItems) if (item.upstream !== NOT_SENT_UPSTREAM) newParts.push(item.upstream);
    const {
      input: _input,
      previous_response_id: _previous,
      conversation: _conversation,
      store: _store,
      ...rest
    } = request.body;
    // vLLM gets one stateless request: the history inline, and store: false so it keeps nothing.
    const restJson = JSON.stringify({ ...rest, store: false });
    // The history goes as the bytes the store handed over: a long one is neither decoded,
    // joined nor copied here.
    const separator = history.upstream.length > 0 && newParts.length > 0 ? ',' : '';
    const parts = [Buffer.from('{"input":['), history.upstream, Buffer.from(`${separator}${newParts.join(',')}],${restJson.slice(1)}`)];
    // One write for a usual body; a long history is sent as it is, in parts.
    const body = history.upstream.length < SEND_IN_PARTS_FROM_BYTES ? Buffer.concat(parts) : parts;

    const hooks: StreamHooks = {
      finish: (response, json) => {
        const output = Array.isArray(response['output']) ? response['output'].filter(isObject) : [];
        // A failed turn is kept as a response but not added to its conversation.
        const conversationId = response['status'] === 'failed' ? null : facts.conversationId;
        // store: false keeps nothing, unless a conversation takes the turn's items.
        if (!facts.store && conversationId === null) return undefined;
        return this.#store.saveResponse({
          tenant,
          id: facts.id,
          createdAt: Date.now(),
          status: String(response['status']),
          model: typeof response['model'] === 'string' ? response['model'] : '',
          body: json,
          previousResponseId: facts.previousResponseId,
          conversationId,
          historySeqs: history.seqs,
          inputItems,
          outputItems: output.map(storedOutputItem),
          storeResponse: facts.store,
        }).then(() => undefined);
      },
    };
    return {
      body,
      transformer: this.#transformer(request.stream, facts, hooks, log),
      dropHeaders: DROP_FOR_NEW_BODY,
      addHeaders: [...JSON_CONTENT_TYPE, 'content-length', String(parts.reduce((sum, part) => sum + part.length, 0))],
    };
  }

  #transformer(stream: boolean, facts: ResponseFacts, hooks: StreamHooks, log: LogSource): ResponseTransformer {
    return {
      select(head: UpstreamHead) {
        // vLLM's own error answers pass through unchanged.
        if (head.status < 200 || head.status >= 300) return undefined;
        if (stream) {
          return head.isEventStream
            ? new StreamNormalizer(facts, hooks, log)
            : new InvalidUpstreamReply('The model server answered a streaming request without an event stream.');
        }
        return new JsonNormalizer(facts, hooks);
      },
    };
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

function notFound(responseId: string): GatewayError {
  return new GatewayError('response_not_found', `Response with id '${responseId}' not found.`, { param: 'response_id' });
}
