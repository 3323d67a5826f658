// The scanner sees vLLM's body in whatever chunks the socket delivered: every way of
// cutting it must give the same usage and model as the whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageScanner, normalizeUsage } from './usage-scanner.ts';

function scan(chunks: readonly string[]): UsageScanner {
  const scanner = new UsageScanner();
  for (const chunk of chunks) scanner.push(Buffer.from(chunk));
  return scanner;
}

/** Every cut into two chunks, and one byte per chunk. */
function everySplit(body: string): string[][] {
  const bytes = Buffer.from(body);
  const splits: string[][] = [];
  for (let at = 1; at < bytes.length; at++) {
    splits.push([bytes.subarray(0, at).toString('latin1'), bytes.subarray(at).toString('latin1')]);
  }
  splits.push([...bytes].map((byte) => String.fromCharCode(byte)));
  return splits;
}

function scanLatin1(chunks: readonly string[]): UsageScanner {
  const scanner = new UsageScanner();
  for (const chunk of chunks) scanner.push(Buffer.from(chunk, 'latin1'));
  return scanner;
}

const RESPONSES_STREAM =
  'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","model":"Qwen/Qwen3-0.6B","usage":null,' +
  '"output":[]}}\n\n' +
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"say \\"usage\\":{\\"input_tokens\\":999}"}\n\n' +
  'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","model":"Qwen/Qwen3-0.6B",' +
  '"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4,"input_tokens_per_turn":[]},"output_tokens":30,' +
  '"output_tokens_details":{"reasoning_tokens":7,"tool_output_tokens":0},"total_tokens":42}}}\n\n';

const CHAT_STREAM =
  'data: {"id":"c","object":"chat.completion.chunk","model":"m\\u00e9","choices":[{"index":0,"delta":{"content":"a"}}],' +
  '"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}\n\n' +
  'data: {"id":"c","object":"chat.completion.chunk","model":"m\\u00e9","choices":[],' +
  '"usage":{"prompt_tokens":5,"total_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}\n\n' +
  'data: [DONE]\n\n';

describe('UsageScanner', () => {
  it('reads a Responses stream: the completed usage, not the text that looks like one', () => {
    const scanner = scan([RESPONSES_STREAM]);
    assert.deepEqual(scanner.usage, { input: 12, output: 30, cached: 4, reasoning: 7 });
    assert.equal(scanner.model, 'Qwen/Qwen3-0.6B');
  });

  it('gives the same answer however the body is cut', () => {
    for (const chunks of everySplit(RESPONSES_STREAM)) {
      const scanner = scanLatin1(chunks);
      assert.deepEqual(scanner.usage, { input: 12, output: 30, cached: 4, reasoning: 7 }, `cut into ${chunks.length} chunks at ${chunks[0]?.length}`);
      assert.equal(scanner.model, 'Qwen/Qwen3-0.6B');
    }
    for (const chunks of everySplit(CHAT_STREAM)) {
      const scanner = scanLatin1(chunks);
      assert.deepEqual(scanner.usage, { input: 5, output: 4, cached: 2, reasoning: 0 }, `cut at ${chunks[0]?.length}`);
      assert.equal(scanner.model, 'mé');
    }
  });

  it('keeps the last usage of a stream with continuous usage stats', () => {
    assert.deepEqual(scan([CHAT_STREAM]).usage, { input: 5, output: 4, cached: 2, reasoning: 0 });
  });

  it('finds the usage at the end of a long stream, and none in a stream without it', () => {
    const delta = (i: number): string => `data: {"choices":[{"delta":{"content":"word ${i}"}}]}\n\n`;
    const deltas = Array.from({ length: 500 }, (_, i) => delta(i));
    const withUsage = scan([...deltas, 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":500}}\n\n', 'data: [DONE]\n\n']);
    assert.deepEqual(withUsage.usage, { input: 3, output: 500, cached: 0, reasoning: 0 });
    assert.equal(scan([...deltas, 'data: [DONE]\n\n']).usage, undefined);
  });

  it('reads a JSON answer (chat completion, embeddings)', () => {
    const chat = scan(['{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}']);
    assert.deepEqual(chat.usage, { input: 3, output: 2, cached: 0, reasoning: 0 });
    const embeddings = scan(['{"object":"list","model":"e","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}']);
    assert.deepEqual(embeddings.usage, { input: 8, output: 0, cached: 0, reasoning: 0 });
    assert.equal(embeddings.model, 'e');
  });

  it('finds nothing in a body without usage, and gives up on an object too large to be one', () => {
    assert.equal(scan(['{"model":"m","usage":null}']).usage, undefined);
    const huge = `{"usage":{"input_tokens":1,"x":"${'a'.repeat(10_000)}"}}`;
    assert.equal(scan([huge]).usage, undefined);
    assert.equal(scan([huge.slice(0, 5000), huge.slice(5000)]).usage, undefined);
  });
});

describe('normalizeUsage', () => {
  it('ignores what is not a count', () => {
    assert.deepEqual(normalizeUsage({ input_tokens: -3, output_tokens: 'many' }), { input: 0, output: 0, cached: 0, reasoning: 0 });
    assert.equal(normalizeUsage({ total_tokens: 3 }), undefined);
    assert.equal(normalizeUsage(null), undefined);
  });
});
