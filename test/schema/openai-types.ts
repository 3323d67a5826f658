// The roots of the schema test/schema/openai-responses.schema.json is generated from
// (scripts/openai-schema.ts): the Responses API's objects as the official openai SDK types
// them, which are generated from OpenAI's published OpenAPI specification. Aliased, so
// that `Response` is OpenAI's and not fetch's.
import type { CompactedResponse, Response as OpenAIResponse, ResponseItem, ResponseStreamEvent } from 'openai/resources/responses/responses';
import type { ConversationItem } from 'openai/resources/conversations/items';

export type ResponseObject = OpenAIResponse;
export type StreamEvent = ResponseStreamEvent;
export type CompactedResponseObject = CompactedResponse;
export type InputItem = ResponseItem;
export type ConversationItemObject = ConversationItem;
