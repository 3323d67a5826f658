import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeResponse, type ResponseFacts } from './response-object.ts';

const facts = (overrides: Partial<ResponseFacts> = {}): ResponseFacts => ({
  id: 'resp_gateway',
  request: { model: 'm', input: 'hi' },
  store: false,
  background: false,
  previousResponseId: null,
  conversationId: null,
  keepRawFields: false,
  ...overrides,
});

const USAGE = { input_tokens: 3, output_tokens: 2, total_tokens: 5, input_tokens_details: { cached_tokens: 1 }, output_tokens_details: { reasoning_tokens: 0 } };

describe('normalizeResponse', () => {
  it("writes OpenAI's fields in OpenAI's order, the conversation after completed_at", () => {
    const response = normalizeResponse({ created_at: 7, usage: USAGE }, facts({ conversationId: 'conv_1', request: { model: 'm', user: 'u1' } }), { output: [] });
    assert.deepEqual(Object.keys(response), [
      'id',
      'object',
      'created_at',
      'status',
      'background',
      'completed_at',
      'conversation',
      'error',
      'frequency_penalty',
      'incomplete_details',
      'instructions',
      'max_output_tokens',
      'max_tool_calls',
      'model',
      'output',
      'parallel_tool_calls',
      'presence_penalty',
      'previous_response_id',
      'prompt_cache_key',
      'reasoning',
      'safety_identifier',
      'service_tier',
      'store',
      'temperature',
      'text',
      'tool_choice',
      'tools',
      'top_logprobs',
      'top_p',
      'truncation',
      'usage',
      'user',
      'metadata',
    ]);
    assert.deepEqual(response['conversation'], { id: 'conv_1' });
    assert.equal(response['user'], 'u1');
  });

  it('leaves usage and user out when there are none, metadata still last', () => {
    const response = normalizeResponse({ usage: null }, facts(), { output: [] });
    assert.equal('usage' in response, false);
    assert.equal('user' in response, false);
    assert.equal(Object.keys(response).at(-1), 'metadata');
  });

  it("with vLLM's private fields kept, still leaves out a usage or user vLLM sent as null", () => {
    const response = normalizeResponse({ usage: null, user: null, kv_transfer_params: null, input_messages: [] }, facts({ keepRawFields: true }), { output: [] });
    assert.equal('usage' in response, false);
    assert.equal('user' in response, false);
    assert.equal(response['kv_transfer_params'], null);
    assert.deepEqual(response['input_messages'], []);
  });
});
