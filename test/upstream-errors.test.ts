// What clients see when vLLM fails: its own error statuses pass through; the gateway's
// own failures are 502/504 JSON, or a last SSE `error` event when a stream breaks.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { vllmError } from '../sim/wire.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { closeAll, metricValue, startGateway, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { killLeftovers, portOf, runCli } from './helpers/cli.ts';
import { parseSse, postJson, send } from './helpers/http.ts';
import { startTlsServer, TLS_CERT_FILE } from './helpers/tls.ts';

let sim: SimVllm;
let gw: TestGateway;

before(async () => {
  // The raw relay's own error events; normalised streams are in output-conformance.test.ts.
  ({ sim, gw } = await startSimAndGateway({ 'upstream-headers-timeout': '0.3', 'upstream-idle-timeout': '0.3', 'passthrough-raw': 'true' }));
});
after(() => closeAll(gw, sim));
after(killLeftovers);

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function assertErrorShape(body: unknown, code: string, type = 'server_error'): void {
  const error = (body as { error: Record<string, unknown> }).error;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(error['code'], code);
  assert.equal(error['type'], type);
  assert.equal(typeof error['message'], 'string');
  assert.ok(!String(error['message']).includes('127.0.0.1'), 'no upstream address in the message');
}

const streamBody = (extra: object = {}): object => ({ model: 'm', input: 'hello there world', stream: true, ...extra });

describe('vLLM error statuses', () => {
  for (const status of [400, 404, 422, 500, 503]) {
    it(`passes ${status} through unchanged`, async () => {
      const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': `status=${status}` });
      assert.equal(res.status, status);
      assert.equal(res.text(), JSON.stringify(vllmError(status, `simulated error ${status}`)));
      assert.equal(res.headers['content-type'], 'application/json');
    });
  }
});

describe('the gateway\'s own upstream errors', () => {
  // Each cause an operator fixes differently has its own code and message; the log has the
  // cause (address included) in one line, and what to do about it when the cause says.
  const causes = [
    {
      name: 'nothing listens on the port',
      upstream: async () => `http://127.0.0.1:${await closedPort()}`,
      code: 'upstream_connection_refused',
      kind: 'connect_refused',
      logged: /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
    },
    {
      name: 'the host name does not resolve',
      upstream: () => 'http://no-such-host.invalid:8000',
      code: 'upstream_dns_failure',
      kind: 'dns_failure',
      logged: /ENOTFOUND no-such-host\.invalid/,
    },
    {
      name: 'https:// points at a plain HTTP port',
      upstream: () => sim.url.replace('http://', 'https://'),
      code: 'upstream_tls_error',
      kind: 'tls',
      logged: /^ERR_SSL_WRONG_VERSION_NUMBER: .*wrong version number/,
      hint: /use http:\/\//,
    },
    {
      name: "vLLM's certificate is not trusted",
      upstream: () => `https://127.0.0.1:${tlsServer.port}`,
      code: 'upstream_tls_error',
      kind: 'tls',
      logged: /self.signed certificate/,
      hint: /NODE_EXTRA_CA_CERTS/,
    },
  ];
  let tlsServer: { port: number; close(): Promise<void> };
  before(async () => {
    tlsServer = await startTlsServer();
  });
  after(() => tlsServer?.close());

  for (const cause of causes) {
    it(`answers 502 ${cause.code} when ${cause.name}, logged at warn in one line`, async () => {
      const down = await startGateway(await cause.upstream(), {}, { captureLogs: true, logLevel: 'warn' });
      try {
        const res = await postJson(`${down.url}/v1/responses`, { model: 'm', input: 'x' });
        assert.equal(res.status, 502);
        assertErrorShape(res.json(), cause.code);
        assert.equal((await postJson(`${down.url}/v1/chat/completions`, {})).json().error.code, cause.code, 'every route says the same');
        const line = down.logs.find((entry) => entry['msg'] === 'upstream exchange failed');
        assert.ok(line !== undefined);
        assert.equal(line['level'], 40);
        assert.equal(line['code'], cause.code);
        assert.equal(line['kind'], cause.kind);
        assert.match(String(line['cause']), cause.logged);
        if (cause.hint !== undefined) assert.match(String(line['hint']), cause.hint);
        assert.equal(line['err'], undefined, 'no stack trace at warn');
        assert.ok(!down.logText().includes('    at '), 'no stack frame anywhere');
        assert.match(
          (await send(`${down.url}/metrics`)).text(),
          new RegExp(`gateway_upstream_errors_total\\{kind="${cause.kind}"\\} 2`),
        );
        const ready = await send(`${down.url}/ready`);
        assert.equal(ready.status, 503);
        assert.ok(ready.json().error.message.includes(`(${cause.code})`), ready.text());
      } finally {
        await down.close();
      }
    });
  }

  it('logs the stack trace too at --log-level debug', async () => {
    const down = await startGateway(`http://127.0.0.1:${await closedPort()}`, {}, { captureLogs: true, logLevel: 'debug' });
    try {
      await postJson(`${down.url}/v1/responses`, { model: 'm', input: 'x' });
      const line = down.logs.find((entry) => entry['msg'] === 'upstream exchange failed');
      assert.match(String((line?.['err'] as { stack?: string } | undefined)?.stack), /ECONNREFUSED[\s\S]*\n +at /);
    } finally {
      await down.close();
    }
  });

  it('trusts a private CA given in NODE_EXTRA_CA_CERTS (the hint works)', { timeout: 30_000 }, async () => {
    const run = runCli(['--llm-api-base', `https://127.0.0.1:${tlsServer.port}/v1`, '--gateway-port', '0', '--gateway-host', '127.0.0.1'], {
      NODE_EXTRA_CA_CERTS: TLS_CERT_FILE,
    });
    const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
    const models = await send(`${url}/v1/models`);
    assert.equal(models.status, 200, models.text());
    assert.equal(models.json().object, 'list');
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
  });

  it('answers 502 when vLLM resets the connection before responding', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'reset-before-headers' });
    assert.equal(res.status, 502);
    assertErrorShape(res.json(), 'upstream_unavailable');
  });

  it('answers 504 upstream_timeout when vLLM sends no headers in time, and stops waiting upstream', async () => {
    const arrived = sim.nextRequest();
    const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x' }, { 'x-sim': 'delay-headers=20000' });
    assert.equal(res.status, 504);
    assertErrorShape(res.json(), 'upstream_timeout');
    await sim.whenAborted(await arrived);
  });
});

describe('mid-stream failures', () => {
  it('end with an error event when vLLM goes idle, and the stream closes', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'stall-after=3' });
    assert.equal(res.status, 200);
    const events = parseSse(res.text());
    assert.equal(events.length, 4);
    const last = events.at(-1);
    assert.equal(last?.event, 'error');
    const data = JSON.parse(last?.data ?? '');
    assert.equal(data.type, 'error');
    assert.equal(data.error.code, 'upstream_timeout');
    assert.equal(data.error.type, 'server_error');
  });

  it('end with an error event when vLLM resets the connection', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'reset-after=4' });
    const events = parseSse(res.text());
    assert.equal(events.length, 5);
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('never pass on half an event when vLLM is cut mid-event', async () => {
    const res = await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': 'truncate-after=4' });
    const events = parseSse(res.text());
    assert.equal(events.length, 5, 'four whole events and the error');
    for (const event of events) assert.doesNotThrow(() => JSON.parse(event.data), 'every event is whole JSON');
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('work the same on other streamed routes', async () => {
    const res = await postJson(
      `${gw.url}/v1/chat/completions`,
      { stream: true, messages: [{ role: 'user', content: 'one two three four' }] },
      { 'x-sim': 'reset-after=2' },
    );
    const events = parseSse(res.text());
    assert.equal(events.at(-1)?.event, 'error');
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').error.code, 'upstream_stream_interrupted');
  });

  it('are counted in the metrics by kind', async () => {
    const kinds = { idle_timeout: 'stall-after=3', reset: 'reset-after=4', headers_timeout: 'delay-headers=20000' } as const;
    for (const [kind, directive] of Object.entries(kinds)) {
      const before = await metricValue(gw.url, `gateway_upstream_errors_total{kind="${kind}"}`);
      await postJson(`${gw.url}/v1/responses`, streamBody(), { 'x-sim': directive });
      const after = await metricValue(gw.url, `gateway_upstream_errors_total{kind="${kind}"}`);
      assert.equal(after - (Number.isNaN(before) ? 0 : before), 1, kind);
    }
  });
});
