import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseBoundary } from './sse-boundary.ts';

const b = (text: string): Buffer => Buffer.from(text);

describe('SSE event boundaries', () => {
  it('finds the last event end inside a chunk', () => {
    const boundary = new SseBoundary();
    assert.equal(boundary.push(b('data: 1\n\ndata: 2\n\ndata: 3')), 18);
  });

  it('ends a chunk of whole events at its end, and still knows the border after it', () => {
    const boundary = new SseBoundary();
    assert.equal(boundary.push(b('data: 1\n\ndata: 2\n\n')), 18);
    assert.equal(boundary.push(b('data: 3\n')), -1);
    assert.equal(boundary.push(b('\ndata: 4')), 1);
  });

  it('finds an event ending across chunks, as vLLM writes them', () => {
    const boundary = new SseBoundary();
    assert.equal(boundary.push(b('event: response.created\n')), -1);
    assert.equal(boundary.push(b('data: {}\n')), -1);
    assert.equal(boundary.push(b('\n')), 1);
    assert.equal(boundary.push(b('event: x\n')), -1);
  });

  it('understands CRLF line ends', () => {
    const boundary = new SseBoundary();
    assert.equal(boundary.push(b('data: 1\r\n\r\n')), 11);
    assert.equal(boundary.push(b('data: 2\r\n')), -1);
    assert.equal(boundary.push(b('\r\n')), 2);
    assert.equal(boundary.push(b('data: 3\r\n\r')), -1);
    assert.equal(boundary.push(b('\n')), 1);
  });

  it('does not see an end in a single newline', () => {
    const boundary = new SseBoundary();
    assert.equal(boundary.push(b('data: {"a":"b\\n"}\n')), -1);
    assert.equal(boundary.push(b('data: more\n')), -1);
  });
});
