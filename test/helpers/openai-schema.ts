// Validation against OpenAI's published schema of the Responses API (the JSON Schema that
// scripts/openai-schema.ts generates from the official SDK's types): every response
// object, output item and stream event the conformance checker sees goes through it.
// Unions are resolved by `type` first, so that a failure names the one schema broken.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import type { AnyJson } from './responses-api.ts';

interface Definition {
  readonly anyOf?: readonly { readonly $ref?: string }[];
  readonly $ref?: string;
  readonly properties?: Readonly<Record<string, { readonly const?: unknown }>>;
}

const schema = JSON.parse(readFileSync(new URL('../schema/openai-responses.schema.json', import.meta.url), 'utf8')) as {
  definitions: Record<string, Definition>;
};
const ajv = new Ajv({ strict: false, allErrors: true, allowUnionTypes: true, validateFormats: false });
ajv.addSchema({ $id: 'openai', definitions: schema.definitions });

const compiled = new Map<string, ValidateFunction>();
function validator(definition: string): ValidateFunction {
  let validate = compiled.get(definition);
  if (validate === undefined) {
    validate = ajv.getSchema(`openai#/definitions/${definition}`);
    assert.ok(validate !== undefined, `the schema has no definition ${definition}`);
    compiled.set(definition, validate);
  }
  return validate;
}

/** The members of a union definition, by the `type` constant each one has. */
function membersByType(union: string): Map<string, string> {
  const members = new Map<string, string>();
  const visit = (name: string): void => {
    const definition = schema.definitions[name];
    if (definition === undefined) return;
    if (definition.$ref !== undefined) return visit(definition.$ref.replace('#/definitions/', ''));
    if (definition.anyOf !== undefined) {
      for (const member of definition.anyOf) if (member.$ref !== undefined) visit(member.$ref.replace('#/definitions/', ''));
      return;
    }
    const type = definition.properties?.['type']?.const;
    if (typeof type === 'string' && !members.has(type)) members.set(type, name);
  };
  visit(union);
  return members;
}

const EVENTS = membersByType('ResponseStreamEvent');
const OUTPUT_ITEMS = membersByType('ResponseOutputItem');
const STORED_ITEMS = membersByType('ResponseItem');
const CONVERSATION_ITEMS = membersByType('ConversationItem');

function check(definition: string, value: unknown, where: string): void {
  const validate = validator(definition);
  if (validate(value)) return;
  const errors = (validate.errors ?? []).slice(0, 5).map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
  assert.fail(`${where}: not as OpenAI's schema says (${definition}):\n  ${errors.join('\n  ')}\n  value: ${JSON.stringify(value).slice(0, 600)}`);
}

function checkMember(members: Map<string, string>, kind: string, value: AnyJson, where: string): void {
  const definition = members.get(value?.type);
  assert.ok(definition !== undefined, `${where}: OpenAI's schema has no ${kind} of type ${String(value?.type)}`);
  check(definition, value, where);
}

/** An output item (in a response, or an output_item event). */
export function checkOutputItemSchema(item: AnyJson, where: string): void {
  checkMember(OUTPUT_ITEMS, 'output item', item, where);
}

/** A response object: each output item on its own, then the whole. */
export function checkResponseSchema(response: AnyJson, where: string): void {
  for (const [index, item] of ((response?.output ?? []) as AnyJson[]).entries()) checkOutputItemSchema(item, `${where} output[${index}]`);
  check('Response', response, where);
}

/** A stream event, by its type (error events included). */
export function checkEventSchema(event: AnyJson, where: string): void {
  if (event?.response !== undefined) checkResponseSchema(event.response, `${where} ${String(event.type)}.response`);
  if (event?.item !== undefined && String(event.type).startsWith('response.output_item')) checkOutputItemSchema(event.item, `${where} ${String(event.type)}.item`);
  checkMember(EVENTS, 'stream event', event, where);
}

/** An item of a response's input_items list. */
export function checkStoredItemSchema(item: AnyJson, where: string): void {
  checkMember(STORED_ITEMS, 'item', item, where);
}

/** An item of a conversation. */
export function checkConversationItemSchema(item: AnyJson, where: string): void {
  checkMember(CONVERSATION_ITEMS, 'conversation item', item, where);
}

/**
 * A compacted response (POST /v1/responses/compact). The SDK types its output as output
 * items, whose message is the assistant's only, while the same schema describes it as "all
 * user messages, followed by a single compaction item" (and Codex reads user messages):
 * each item is checked as an item of a conversation (ResponseItem: user messages and
 * compaction items both), the rest of the object as CompactedResponse.
 */
export function checkCompactedSchema(compacted: AnyJson, where: string): void {
  for (const [index, item] of ((compacted?.output ?? []) as AnyJson[]).entries()) checkStoredItemSchema(item, `${where} output[${index}]`);
  check('CompactedResponse', { ...compacted, output: [] }, where);
}
