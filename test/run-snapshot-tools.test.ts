// A run whose process died in the middle of a tool loop: its snapshot keeps what the log
// holds, and the events that close it leave a stream the conformance checker accepts
// (a tool list never finished fails, a call never answered ends incomplete).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventRenderer, DONE_LINE } from '../src/responses/event-renderer.ts';
import { closingEvents, snapshotFromEvents } from '../src/responses/run-snapshot.ts';
import type { Json } from '../src/responses/items.ts';
import { responseError } from '../src/responses/response-object.ts';
import { checkStream } from './helpers/conformance.ts';
import type { AnyJson } from './helpers/responses-api.ts';

const base: Json = {
  id: 'resp_0123456789abcdef0123456789abcdef',
  object: 'response',
  created_at: 1,
  status: 'in_progress',
  background: true,
  completed_at: null,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  max_tool_calls: null,
  model: 'm',
  output: [],
  parallel_tool_calls: true,
  previous_response_id: null,
  prompt_cache_key: null,
  reasoning: { effort: null, summary: null },
  safety_identifier: null,
  service_tier: 'auto',
  store: true,
  temperature: 1,
  text: { format: { type: 'text' } },
  tool_choice: 'auto',
  tools: [],
  top_logprobs: 0,
  top_p: 1,
  truncation: 'disabled',
  metadata: {},
};

/** The log of a run that died where `upTo` says. */
function deadLog(upTo: 'listing' | 'calling'): { events: string[]; render: EventRenderer } {
  const render = new EventRenderer();
  const events: string[] = [render.responseEvent('response.created', JSON.stringify(base))];
  const send = (type: string, fields: Json): void => render.send(events, type, fields);
  const list = { id: 'mcpl_1', type: 'mcp_list_tools', server_label: 'calc', tools: [] };
  send('response.output_item.added', { output_index: 0, item: list });
  send('response.mcp_list_tools.in_progress', { item_id: 'mcpl_1', output_index: 0 });
  if (upTo === 'listing') return { events, render };
  send('response.mcp_list_tools.completed', { item_id: 'mcpl_1', output_index: 0 });
  send('response.output_item.done', { output_index: 0, item: { ...list, tools: [{ name: 'add', input_schema: {} }] } });
  const call = { id: 'mcp_1', type: 'mcp_call', status: 'in_progress', approval_request_id: null, arguments: '', error: null, name: 'add', output: null, server_label: 'calc' };
  send('response.output_item.added', { output_index: 1, item: call });
  send('response.mcp_call.in_progress', { item_id: 'mcp_1', output_index: 1 });
  send('response.mcp_call_arguments.delta', { item_id: 'mcp_1', output_index: 1, delta: '{"a":1,' });
  send('response.mcp_call_arguments.delta', { item_id: 'mcp_1', output_index: 1, delta: '"b":2}' });
  send('response.mcp_call_arguments.done', { item_id: 'mcp_1', output_index: 1, arguments: '{"a":1,"b":2}' });
  return { events, render };
}

/** The whole stream a reader gets: the log, the closing events, error, response.failed. */
function closed(upTo: 'listing' | 'calling'): { text: string; output: AnyJson[] } {
  const { events, render } = deadLog(upTo);
  const snapshot = snapshotFromEvents(base, events);
  assert.equal(snapshot.terminal, false);
  const closing = closingEvents(snapshot, render);
  const failed = { ...base, status: 'failed', error: responseError('run_interrupted', 'gone'), output: closing.output };
  const tail = [render.error(new Error('gone')), render.responseEvent('response.failed', JSON.stringify(failed)), DONE_LINE];
  return { text: [...events, ...closing.events, ...tail].join(''), output: closing.output };
}

describe('a dead run in the middle of a tool loop', () => {
  it('during a call: the snapshot has the arguments, the call ends incomplete, the stream is conformant', () => {
    const snapshot = snapshotFromEvents(base, deadLog('calling').events);
    const call = (snapshot.response['output'] as AnyJson[])[1];
    assert.equal(call.arguments, '{"a":1,"b":2}');
    const { text, output } = closed('calling');
    checkStream(text);
    assert.deepEqual(
      output.map((item) => [item.type, item.status ?? null]),
      [
        ['mcp_list_tools', null],
        ['mcp_call', 'incomplete'],
      ],
    );
    assert.match(output[1].error, /stopped before it finished/);
    assert.equal(output[0].tools.length, 1, 'the finished list is kept as it was');
  });

  it('during the listing: the list fails with a reason', () => {
    const { text, output } = closed('listing');
    checkStream(text);
    assert.match(output[0].error, /stopped before it finished/);
    assert.ok(text.includes('event: response.mcp_list_tools.failed'));
  });
});
