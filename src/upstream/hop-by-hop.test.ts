import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterRequestHeaders, filterResponseHeaders } from './hop-by-hop.ts';

const base = { apiKey: undefined, requestId: 'rid', replaceRequestId: false };

describe('request headers', () => {
  it('drops hop-by-hop fields, Host, Content-Length and Expect', () => {
    const out = filterRequestHeaders(
      [
        'Host', 'gw', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
        'Trailer', 'x', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'p',
        'Proxy-Authenticate', 'p', 'Proxy-Connection', 'close', 'Content-Length', '3', 'Expect', '100-continue',
        'Content-Type', 'application/json',
      ],
      base,
    );
    assert.deepEqual(out, ['Content-Type', 'application/json', 'x-request-id', 'rid']);
  });

  it('strips headers named in Connection', () => {
    const out = filterRequestHeaders(['Connection', 'X-Hop, x-other', 'X-Hop', '1', 'X-Other', '2', 'X-Keep', '3'], base);
    assert.deepEqual(out, ['X-Keep', '3', 'x-request-id', 'rid']);
  });

  it('keeps repeated headers repeated and in order', () => {
    const out = filterRequestHeaders(['X-Multi', 'a', 'Accept', '*/*', 'X-Multi', 'b'], base);
    assert.deepEqual(out.slice(0, 6), ['X-Multi', 'a', 'Accept', '*/*', 'X-Multi', 'b']);
  });

  it('injects the upstream key only when the client sent no Authorization', () => {
    assert.deepEqual(filterRequestHeaders([], { ...base, apiKey: 'k' }), ['authorization', 'Bearer k', 'x-request-id', 'rid']);
    assert.deepEqual(filterRequestHeaders(['Authorization', 'Bearer mine'], { ...base, apiKey: 'k' }), [
      'Authorization', 'Bearer mine', 'x-request-id', 'rid',
    ]);
  });

  it('keeps the client\'s request id unless told to replace it', () => {
    assert.deepEqual(filterRequestHeaders(['X-Request-Id', 'c1'], base), ['X-Request-Id', 'c1']);
    assert.deepEqual(filterRequestHeaders(['X-Request-Id', 'bad id'], { ...base, replaceRequestId: true }), [
      'x-request-id', 'rid',
    ]);
  });

  it('drops extra names it is given', () => {
    const out = filterRequestHeaders(['Accept-Encoding', 'gzip', 'A', 'b'], { ...base, drop: new Set(['accept-encoding']) });
    assert.deepEqual(out, ['A', 'b', 'x-request-id', 'rid']);
  });
});

describe('response headers', () => {
  it('drops hop-by-hop, Connection-named, CORS and x-request-id; keeps the rest', () => {
    const raw = [
      'connection', 'x-hop', 'x-hop', '1', 'keep-alive', 'timeout=5', 'transfer-encoding', 'chunked',
      'proxy-authenticate', 'Basic', 'access-control-allow-origin', '*', 'x-request-id', 'upstream',
      'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-unknown', 'v', 'content-length', '10',
    ].map((s) => Buffer.from(s, 'latin1'));
    assert.deepEqual(filterResponseHeaders(raw, true), [
      'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-unknown', 'v', 'content-length', '10',
    ]);
    assert.deepEqual(filterResponseHeaders(raw, false), ['set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-unknown', 'v']);
  });
});
