// Every field of a Responses request: translated to its Chat Completions form, kept on the
// gateway, or refused with a 400 naming it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../errors.ts';
import { toChatRequest } from './chat-request.ts';

const fn = { type: 'function', name: 'add', description: 'Adds', parameters: { type: 'object', properties: { a: { type: 'number' } } }, strict: true };

function refusal(request: Record<string, unknown>): GatewayError {
  try {
    toChatRequest(request);
  } catch (error) {
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'unsupported_parameter');
    return error;
  }
  assert.fail('the request was translated');
}

describe('toChatRequest', () => {
  it('translates the sampling and output fields, streams with usage, and keeps gateway fields home', () => {
    const { body, stream } = toChatRequest({
      model: 'm',
      input: 'hi',
      stream: true,
      max_output_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      parallel_tool_calls: false,
      reasoning: { effort: 'high', summary: 'auto' },
      user: 'u-1',
      top_logprobs: 3,
      include: ['message.output_text.logprobs', 'reasoning.encrypted_content'],
      store: true,
      metadata: { a: '1' },
      previous_response_id: 'resp_1',
      conversation: 'conv_1',
      background: false,
      service_tier: 'auto',
      prompt_cache_key: 'k',
      truncation: 'auto',
      safety_identifier: 's',
      top_k: 20,
    });
    assert.equal(stream, true);
    assert.deepEqual(body, {
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      parallel_tool_calls: false,
      reasoning_effort: 'high',
      user: 'u-1',
      logprobs: true,
      top_logprobs: 3,
      top_k: 20,
      messages: [{ role: 'user', content: 'hi' }],
    });
  });

  it('sends safety_identifier as user when there is no user', () => {
    assert.equal(toChatRequest({ input: 'x', safety_identifier: 's' }).body['user'], 's');
  });

  it('makes messages of instructions and every kind of input item', () => {
    const { body } = toChatRequest({
      instructions: 'be brief',
      input: [
        { role: 'developer', content: 'use tools' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'look ' }, { type: 'input_text', text: 'here' }] },
        { role: 'user', content: [{ type: 'input_text', text: 'and at' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'low' }, { type: 'input_file', file_data: 'data:application/pdf;base64,BBBB', filename: 'a.pdf' }] },
        { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'think' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'calling' }] },
        { type: 'function_call', call_id: 'c1', name: 'add', arguments: '{"a":1}' },
        { type: 'function_call', call_id: 'c2', name: 'add', arguments: '{"a":2}' },
        { type: 'function_call_output', call_id: 'c1', output: '1' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: '2' }] },
        { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'sum' }] },
        { role: 'assistant', content: 'done' },
      ],
    });
    assert.deepEqual(body['messages'], [
      { role: 'system', content: 'be brief' },
      { role: 'system', content: 'use tools' },
      { role: 'user', content: 'look here' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'and at' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
          { type: 'file', file: { file_data: 'data:application/pdf;base64,BBBB', filename: 'a.pdf' } },
        ],
      },
      {
        role: 'assistant',
        content: 'calling',
        reasoning: 'think',
        reasoning_content: 'think',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'add', arguments: '{"a":1}' } },
          { id: 'c2', type: 'function', function: { name: 'add', arguments: '{"a":2}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: '1' },
      { role: 'tool', tool_call_id: 'c2', content: '2' },
      { role: 'assistant', content: 'done', reasoning: 'sum', reasoning_content: 'sum' },
    ]);
  });

  it('translates tools, tool_choice (allowed_tools as the allowed subset) and text.format', () => {
    const other = { ...fn, name: 'mul' };
    assert.deepEqual(toChatRequest({ input: 'x', tools: [fn], tool_choice: { type: 'function', name: 'add' } }).body['tool_choice'], { type: 'function', function: { name: 'add' } });
    const allowed = toChatRequest({ input: 'x', tools: [fn, other], tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', name: 'mul' }] } }).body;
    assert.deepEqual(allowed['tools'], [{ type: 'function', function: { name: 'mul', description: 'Adds', parameters: fn.parameters, strict: true } }]);
    assert.equal(allowed['tool_choice'], 'required');
    assert.equal(toChatRequest({ input: 'x', tools: [fn], tool_choice: 'required' }).body['tool_choice'], 'required');
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } } };
    assert.deepEqual(toChatRequest({ input: 'x', text: { format: { type: 'json_schema', name: 'r', schema, strict: true }, verbosity: 'low' } }).body['response_format'], {
      type: 'json_schema',
      json_schema: { name: 'r', schema, strict: true },
    });
    assert.equal(toChatRequest({ input: 'x', text: { format: { type: 'json_schema', name: 'r', schema }, verbosity: 'low' } }).body['verbosity'], 'low');
    assert.deepEqual(toChatRequest({ input: 'x', text: { format: { type: 'json_object' } } }).body['response_format'], { type: 'json_object' });
    assert.equal(toChatRequest({ input: 'x', text: { format: { type: 'text' } } }).body['response_format'], undefined);
  });

  it('refuses what has no chat form, naming it', () => {
    assert.equal(refusal({ input: 'x', tools: [{ type: 'web_search' }] }).param, 'tools[0].type');
    assert.equal(refusal({ input: 'x', prompt: { id: 'pmpt_1' } }).param, 'prompt');
    assert.equal(refusal({ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] }).param, 'input[0].content[0].file_id');
    assert.equal(refusal({ input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'https://x/a.pdf' }] }] }).param, 'input[0].content[0].file_url');
    assert.equal(refusal({ input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }).param, 'input[0].content[0].type');
    assert.equal(refusal({ input: [{ type: 'item_reference', id: 'msg_1' }] }).param, 'input[0].type');
    assert.equal(refusal({ input: [{ type: 'function_call_output', call_id: 'c', output: [{ type: 'input_image', image_url: 'x' }] }] }).param, 'input[0].output[0].type');
    assert.equal(refusal({ input: 'x', tools: [fn], tool_choice: { type: 'mcp', server_label: 's' } }).param, 'tool_choice');
    assert.equal(refusal({ input: 'x', text: { format: { type: 'grammar' } } }).param, 'text.format.type');
    assert.match(refusal({ input: 'x', prompt: { id: 'p' } }).message, /Chat Completions backend/);
  });
});
