// The chat stream translation on what the fixtures do not cover: logprobs, refusals,
// tool calls without an index, CRLF framing, a stream cut short, interleaved calls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatStreamTranslator } from './chat-stream.ts';

type Json = Record<string, unknown>;

function translate(lines: readonly string[], separator = '\n\n'): Json[] {
  const translator = new ChatStreamTranslator();
  let out = '';
  for (const line of lines) out += translator.push(Buffer.from(line + separator));
  out += translator.end();
  return out
    .split('\n\n')
    .filter((block) => block.length > 0)
    .map((block) => JSON.parse(block.split('\n')[1]?.slice(6) ?? '') as Json);
}

const chunk = (delta: Json, extra: Json = {}): string => `data: ${JSON.stringify({ id: 'c1', model: 'm', created: 1, choices: [{ index: 0, delta, ...extra }] })}`;

describe('ChatStreamTranslator', () => {
  it('carries logprobs into the deltas and the final part', () => {
    const logprob = { token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [] };
    const events = translate([chunk({ content: 'Hi' }, { logprobs: { content: [logprob] } }), chunk({}, { finish_reason: 'stop' }), 'data: [DONE]']);
    assert.deepEqual(events.find((event) => event['type'] === 'response.output_text.delta')?.['logprobs'], [logprob]);
    const done = events.find((event) => event['type'] === 'response.output_text.done');
    assert.deepEqual(done?.['logprobs'], [logprob]);
  });

  it('streams a refusal as a refusal part', () => {
    const events = translate([chunk({ refusal: 'I cannot' }), chunk({ refusal: ' help.' }), chunk({}, { finish_reason: 'stop' }), 'data: [DONE]']);
    assert.deepEqual(
      events.filter((event) => event['type'] === 'response.refusal.delta').map((event) => event['delta']),
      ['I cannot', ' help.'],
    );
    const terminal = events.at(-1) as Json;
    assert.equal(terminal['type'], 'response.completed');
    assert.deepEqual(((terminal['response'] as Json)['output'] as Json[])[0]?.['content'], [{ type: 'refusal', refusal: 'I cannot help.' }]);
  });

  it('reads tool calls without an index (a named piece starts one, a nameless one continues it), over CRLF framing', () => {
    const events = translate(
      [
        chunk({ tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{"x"' } }] }),
        chunk({ tool_calls: [{ function: { arguments: ':1}' } }] }),
        chunk({ tool_calls: [{ id: 'b', function: { name: 'g', arguments: { y: 2 } } }] }),
        chunk({}, { finish_reason: 'tool_calls' }),
        'data: [DONE]',
      ],
      '\r\n\r\n',
    );
    const output = ((events.at(-1) as Json)['response'] as Json)['output'] as Json[];
    assert.deepEqual(
      output.map((item) => [item['call_id'], item['name'], item['arguments']]),
      [
        ['a', 'f', '{"x":1}'],
        ['b', 'g', '{"y":2}'],
      ],
    );
  });

  it('gives no terminal event to a stream cut before its finish (the normalizer fails it)', () => {
    const events = translate([chunk({ content: 'Hel' })]);
    assert.deepEqual(
      events.map((event) => event['type']),
      ['response.created', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta'],
    );
  });

  it('fails a stream whose parallel calls interleave their arguments (the Responses stream cannot)', () => {
    const events = translate([
      chunk({ tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'b', function: { name: 'g', arguments: '{}' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }),
      'data: [DONE]',
    ]);
    const last = events.at(-1) as Json;
    assert.equal(last['type'], 'error');
    assert.match(String(last['message']), /interleaved/);
  });

  it('numbers its events from 0 and ends a [DONE] without a finish reason as completed', () => {
    const events = translate([chunk({ content: 'ok' }), 'data: [DONE]']);
    assert.deepEqual(events.map((event) => event['sequence_number']), events.map((_, index) => index));
    assert.equal(events.at(-1)?.['type'], 'response.completed');
  });
});
