// Request bodies sent compressed (Content-Encoding), as coding agents send long histories:
// each coding read, the limit applied to the decoded size, and clear 4xx answers for
// bytes that do not decode and codings the gateway cannot read.
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/http.ts';
import { checkResponseObject } from './helpers/conformance.ts';

const zstdCompressSync = (zlib as unknown as { zstdCompressSync?: (input: Buffer) => Buffer }).zstdCompressSync;

const ENCODERS: Record<string, ((input: Buffer) => Buffer) | undefined> = {
  gzip: zlib.gzipSync,
  deflate: zlib.deflateSync,
  br: zlib.brotliCompressSync,
  zstd: zstdCompressSync,
};

describe('compressed request bodies', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'max-body-size': '1mb' })));
  after(() => closeAll(gw, sim));
  const post = (body: Buffer, encoding: string, path = '/v1/responses') =>
    send(`${gw.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });

  for (const [coding, encode] of Object.entries(ENCODERS)) {
    it(`reads a ${coding} body, stored and stateless; vLLM gets it decoded`, async (t) => {
      if (encode === undefined) {
        // This Node.js has no zstd: the gateway on it answers 415, saying why.
        t.diagnostic(`zstd is not in node:zlib on ${process.version}: the gateway must refuse it clearly`);
        const refused = await post(Buffer.from('(zstd bytes)'), coding);
        assert.equal(refused.status, 415, refused.text());
        assert.equal(refused.json().error.code, 'unsupported_content_encoding');
        assert.match(refused.json().error.message, /zstd needs Node\.js 22\.15/);
        return;
      }
      for (const store of [true, false]) {
        const body = Buffer.from(JSON.stringify({ model: 'm', store, input: `hello in ${coding}` }));
        const answer = await post(encode(body), coding);
        assert.equal(answer.status, 200, answer.text());
        checkResponseObject(answer.json(), `${coding} body`);
        assert.equal(answer.json().output[0].content[0].text, `You said: hello in ${coding}`);
        const upstream = sim.requests.at(-1);
        assert.equal(upstream?.headers['content-encoding'], undefined);
      }
    });
  }

  it('undoes several codings, last applied first', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'm', input: 'twice' }));
    const answer = await post(zlib.brotliCompressSync(zlib.gzipSync(body)), 'gzip, br');
    assert.equal(answer.status, 200, answer.text());
  });

  it('a conversation created from a compressed body', async () => {
    const body = Buffer.from(JSON.stringify({ items: [{ role: 'user', content: 'kept' }] }));
    const answer = await post(zlib.gzipSync(body), 'gzip', '/v1/conversations');
    assert.equal(answer.status, 200, answer.text());
    assert.match(answer.json().id, /^conv_/);
  });

  it('limits the decoded size: a small bomb gets 413, never a full decode', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    assert.ok(bomb.length < 1024 * 1024, 'the compressed bomb fits the body limit');
    const answer = await post(bomb, 'gzip');
    assert.equal(answer.status, 413, answer.text());
    assert.equal(answer.json().error.code, 'request_too_large');
    assert.match(answer.json().error.message, /decoded/);
  });

  it('bytes that do not decode: 400; a coding it cannot read: 415', async () => {
    const garbled = await post(Buffer.from('not gzip at all'), 'gzip');
    assert.equal(garbled.status, 400, garbled.text());
    assert.equal(garbled.json().error.code, 'invalid_request');
    const unknown = await post(Buffer.from('{}'), 'compress');
    assert.equal(unknown.status, 415, unknown.text());
    assert.equal(unknown.json().error.code, 'unsupported_content_encoding');
    assert.equal(sim.requests.filter((request) => request.body.toString().includes('not gzip')).length, 0);
  });
});
