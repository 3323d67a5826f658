// OpenAI's Conversations API: a conversation is a list of items with metadata; a
// response created with `conversation` reads its items as history and appends its own.
import { GatewayError } from '../errors.ts';
import type { ConversationRecord, PageQuery, Store } from '../store/store.ts';
import { checkIdShape } from './create-request.ts';
import { ID_PREFIX, newId } from './ids.ts';
import { planInputItems, referencedItemIds, resolveInputItems, type Json } from './items.ts';
import { cursorNotFound, renderList } from './list-query.ts';

/** OpenAI's limits: 20 items per request; metadata of 16 pairs, keys <= 64, values <= 512 chars. */
const MAX_ITEMS_PER_REQUEST = 20;
const MAX_METADATA_PAIRS = 16;
const MAX_METADATA_KEY = 64;
const MAX_METADATA_VALUE = 512;

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function metadataJson(value: unknown): string {
  if (value === undefined || value === null) return '{}';
  if (!isObject(value)) throw invalid("Invalid 'metadata': expected an object of string values.", 'metadata');
  const entries = Object.entries(value);
  if (entries.length > MAX_METADATA_PAIRS) throw invalid(`Invalid 'metadata': at most ${MAX_METADATA_PAIRS} keys.`, 'metadata');
  for (const [key, entry] of entries) {
    if (key.length > MAX_METADATA_KEY) throw invalid(`Invalid 'metadata': keys are at most ${MAX_METADATA_KEY} characters.`, 'metadata');
    if (typeof entry !== 'string' || entry.length > MAX_METADATA_VALUE) {
      throw invalid(`Invalid 'metadata.${key.slice(0, 64)}': expected a string of at most ${MAX_METADATA_VALUE} characters.`, 'metadata');
    }
  }
  return JSON.stringify(value);
}

function renderConversation(record: ConversationRecord): string {
  return `{"id":${JSON.stringify(record.id)},"object":"conversation","created_at":${Math.floor(record.createdAt / 1000)},"metadata":${record.metadata}}`;
}

function notFound(conversationId: string): GatewayError {
  return new GatewayError('conversation_not_found', `Conversation with id '${conversationId}' not found.`, { param: 'conversation_id' });
}

export class ConversationsService {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async #newItems(tenant: string, rawItems: unknown, param: string) {
    if (rawItems === undefined || rawItems === null) return [];
    if (!Array.isArray(rawItems)) throw invalid(`Invalid '${param}': expected a list of items.`, param);
    if (rawItems.length > MAX_ITEMS_PER_REQUEST) throw invalid(`Invalid '${param}': at most ${MAX_ITEMS_PER_REQUEST} items per request.`, param);
    const planned = planInputItems(rawItems);
    const references = new Map((await this.#store.getItemsById(tenant, referencedItemIds(planned))).map((item) => [item.id, item]));
    return resolveInputItems(planned, references);
  }

  async create(tenant: string, body: Json): Promise<string> {
    const items = await this.#newItems(tenant, body['items'], 'items');
    const record: ConversationRecord = { id: newId(ID_PREFIX.conversation), createdAt: Date.now(), metadata: metadataJson(body['metadata']) };
    await this.#store.createConversation(tenant, record, items);
    return renderConversation(record);
  }

  async get(tenant: string, conversationId: string): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    const record = await this.#store.getConversation(tenant, conversationId);
    if (record === undefined) throw notFound(conversationId);
    return renderConversation(record);
  }

  async update(tenant: string, conversationId: string, body: Json): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    if (body['metadata'] === undefined) throw invalid("Missing required parameter: 'metadata'.", 'metadata');
    const record = await this.#store.updateConversation(tenant, conversationId, metadataJson(body['metadata']));
    if (record === undefined) throw notFound(conversationId);
    return renderConversation(record);
  }

  async delete(tenant: string, conversationId: string): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    if (!(await this.#store.deleteConversation(tenant, conversationId))) throw notFound(conversationId);
    return JSON.stringify({ id: conversationId, object: 'conversation.deleted', deleted: true });
  }

  async listItems(tenant: string, conversationId: string, query: PageQuery): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    const page = await this.#store.listConversationItems(tenant, conversationId, query);
    if (page === 'not_found') throw notFound(conversationId);
    if (page === 'cursor_not_found') throw cursorNotFound(query);
    return renderList(page.items, page.hasMore);
  }

  async addItems(tenant: string, conversationId: string, body: Json): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    if (!Array.isArray(body['items']) || body['items'].length === 0) {
      throw invalid("Invalid 'items': expected a list of 1 to 20 items.", 'items');
    }
    const items = await this.#newItems(tenant, body['items'], 'items');
    const added = await this.#store.addConversationItems(tenant, conversationId, items);
    if (added === undefined) throw notFound(conversationId);
    return renderList(added, false);
  }

  async getItem(tenant: string, conversationId: string, itemId: string): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    const item = await this.#store.getConversationItem(tenant, conversationId, itemId);
    if (item === undefined) throw itemNotFound(itemId);
    return item.payload;
  }

  /** Removes the item; answers with the conversation, as OpenAI's API does. */
  async deleteItem(tenant: string, conversationId: string, itemId: string): Promise<string> {
    checkIdShape(conversationId, ID_PREFIX.conversation, 'conversation_id');
    const record = await this.#store.getConversation(tenant, conversationId);
    if (record === undefined) throw notFound(conversationId);
    if (!(await this.#store.deleteConversationItem(tenant, conversationId, itemId))) throw itemNotFound(itemId);
    return renderConversation(record);
  }
}

function itemNotFound(itemId: string): GatewayError {
  return new GatewayError('item_not_found', `Item with id '${itemId.slice(0, 100)}' not found.`, { param: 'item_id' });
}
