// Every spelling of a path is routed by its normalized form, so no spelling reaches vLLM's
// own stateful endpoints around the gateway; every method gets an answer in JSON.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normalizeTarget } from '../src/http/request-target.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { sendRaw } from './helpers/http.ts';

describe('normalizeTarget', () => {
  const cases: [string, string][] = [
    ['/v1/responses', '/v1/responses'],
    ['/v1/%72esponses', '/v1/responses'],
    ['/v1/RESPONSES', '/v1/RESPONSES'],
    ['//v1//responses', '/v1/responses'],
    ['/v1/./responses', '/v1/responses'],
    ['/v1/models/../responses', '/v1/responses'],
    ['/v1/%2e%2e/v1/responses', '/v1/responses'],
    ['/v1/%2E/responses/', '/v1/responses/'],
    ['/../../v1/responses', '/v1/responses'],
    ['/v1/models/..', '/v1/'],
    ['http://example.com/v1/responses', '/v1/responses'],
    ['http://example.com', '/'],
    ['/v1/a%20b', '/v1/a%20b'],
    ['/v1/a%3ab', '/v1/a%3Ab'],
  ];
  for (const [raw, expected] of cases) {
    it(`reads ${raw} as ${expected}`, () => {
      const target = normalizeTarget(raw);
      assert.ok(target.ok);
      assert.equal(target.pathname, expected);
    });
  }

  it('keeps the query string as it came', () => {
    assert.deepEqual(normalizeTarget('/v1/%72esponses/x/input_items?limit=2&after=a%2Fb'), {
      ok: true,
      pathname: '/v1/responses/x/input_items',
      search: '?limit=2&after=a%2Fb',
    });
  });

  for (const raw of ['/v1%2Fresponses', '/v1/responses%2fresp_x', '/v1/a%5Cb', '/v1/a%00', '/v1/%zz', '/v1/%4', '*']) {
    it(`refuses ${raw}`, () => assert.equal(normalizeTarget(raw).ok, false));
  }
});

describe('spellings of stateful paths', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway()));
  after(() => closeAll(gw, sim));

  const spellings = [
    '/v1/%72esponses/resp_0123456789abcdef0123456789abcdef',
    '//v1/responses/resp_0123456789abcdef0123456789abcdef',
    '/v1//responses/resp_0123456789abcdef0123456789abcdef',
    '/v1/./responses/resp_0123456789abcdef0123456789abcdef',
    '/v1/models/../responses/resp_0123456789abcdef0123456789abcdef',
    '/v1/%2e%2e/v1/responses/resp_0123456789abcdef0123456789abcdef',
    '/v1/c%6fnversations/conv_0123456789abcdef0123456789abcdef',
    'http://localhost/v1/responses/resp_0123456789abcdef0123456789abcdef',
  ];
  for (const path of spellings) {
    it(`${path} is answered by the gateway, never forwarded`, async () => {
      const before = sim.requests.length;
      const res = await sendRaw(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 404);
      assert.match(JSON.parse(res.body).error.code, /^(response|conversation)_not_found$/);
      assert.equal(sim.requests.length, before, 'vLLM saw nothing');
    });
  }

  it('an encoded slash is refused, not forwarded', async () => {
    const before = sim.requests.length;
    const res = await sendRaw(gw.port, 'GET /v1/responses%2Fresp_x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).error.code, 'invalid_request');
    assert.equal(sim.requests.length, before);
  });

  it('a forwarded path goes to vLLM in its normalized form', async () => {
    const arrived = sim.nextRequest();
    const res = await sendRaw(gw.port, 'GET //v1/./%6dodels?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal((await arrived).url, '/v1/models?x=1');
  });
});

describe('methods', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway()));
  after(() => closeAll(gw, sim));

  for (const method of ['TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'SEARCH', 'OPTIONS']) {
    it(`${method} on a forwarded path gets the gateway's JSON 405`, async () => {
      const before = sim.requests.length;
      const res = await sendRaw(gw.port, `${method} /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 405);
      assert.equal(JSON.parse(res.body).error.code, 'method_not_allowed');
      assert.match(res.head, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE/i);
      assert.equal(sim.requests.length, before);
    });
  }

  it('CONNECT gets a JSON 405 instead of a closed connection', async () => {
    const res = await sendRaw(gw.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.equal(res.status, 405);
    assert.equal(JSON.parse(res.body).error.code, 'method_not_allowed');
  });

  it('OPTIONS * gets a JSON 400', async () => {
    const res = await sendRaw(gw.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).error.code, 'invalid_request');
  });
});
