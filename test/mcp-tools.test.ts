// Server-side tools: a request naming MCP servers gets one response in which the gateway
// listed the tools, ran the calls the model made (several vLLM calls), and streamed it all
// with one sequence. Real MCP servers (the official SDK, on loopback, one of them a child
// process killed mid-call), the simulated vLLM calling tools as vLLM streams them, and the
// openai SDK as a client.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startSimVllm, type SimVllm } from '../sim/vllm-sim.ts';
import { checkResponseObject, checkStream } from './helpers/conformance.ts';
import { closeAll, startGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson, send } from './helpers/http.ts';
import { startMcpServer, type TestMcpServer } from '../sim/mcp-server.ts';
import { create, createStream, messageText, type AnyJson } from './helpers/responses-api.ts';

/** The sim's input token count for one request (what its usage reports). */
function simInputTokens(body: AnyJson): number {
  return Math.max(1, Math.ceil(JSON.stringify(body.input ?? '').length / 4));
}

const types = (response: AnyJson): string[] => (response.output as AnyJson[]).map((item) => item.type);
const itemsOf = (response: AnyJson, type: string): AnyJson[] => (response.output as AnyJson[]).filter((item) => item.type === type);
const finalText = (response: AnyJson): string => messageText(itemsOf(response, 'message').at(-1));

describe('MCP tools', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  let calc: TestMcpServer;
  let other: TestMcpServer;
  let legacy: TestMcpServer;
  let client: OpenAI;
  const SECRET = 'secret-token-5f2c9e';
  const dir = mkdtempSync(join(tmpdir(), 'rg-mcp-'));

  before(async () => {
    [calc, other, legacy] = await Promise.all([startMcpServer(), startMcpServer(), startMcpServer({ transport: 'sse' })]);
    const serversFile = join(dir, 'servers.json');
    writeFileSync(serversFile, JSON.stringify({ ops: { url: other.url, headers: { 'x-ops-token': '${RG_TEST_OPS_TOKEN}' }, require_approval: 'never' } }));
    process.env['RG_TEST_OPS_TOKEN'] = SECRET;
    sim = await startSimVllm();
    gw = await startGateway(
      sim.url,
      { 'mcp-call-timeout': '1', 'mcp-max-output-size': '1KiB', 'mcp-servers': serversFile, 'mcp-max-rounds': '3' },
      { captureLogs: true },
    );
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await closeAll(gw, sim, calc, other, legacy);
    rmSync(dir, { recursive: true, force: true });
    delete process.env['RG_TEST_OPS_TOKEN'];
  });

  const calcTool = (extra: object = {}): AnyJson => ({ type: 'mcp', server_label: 'calc', server_url: calc.url, require_approval: 'never', ...extra });
  const since = (): number => sim.requests.length;
  const vllmRequests = (from: number): AnyJson[] => sim.requests.slice(from).map((request) => request.json);

  it('one call: the tools are listed, the call runs, the model answers with its output; one stream, conformant', async () => {
    const from = since();
    const callsBefore = calc.calls.length;
    const stream = await createStream(gw.url, { model: 'm', input: 'please add 2 and 3', tools: [calcTool()] });
    assert.equal(stream.status, 200);
    const response = stream.terminal;
    assert.deepEqual(types(response), ['mcp_list_tools', 'mcp_call', 'message']);
    const [list, call] = response.output as AnyJson[];
    assert.deepEqual(
      (list.tools as AnyJson[]).map((tool) => tool.name),
      ['add', 'echo', 'delete_everything', 'slow', 'fail', 'huge'],
    );
    assert.equal(list.server_label, 'calc');
    assert.deepEqual({ name: call.name, server_label: call.server_label, arguments: JSON.parse(call.arguments), output: call.output, status: call.status }, {
      name: 'add',
      server_label: 'calc',
      arguments: { a: 2, b: 3 },
      output: '5',
      status: 'completed',
    });
    assert.equal(finalText(response), 'Tool results: 5');
    assert.deepEqual(calc.calls.slice(callsBefore).map((c) => [c.name, c.args]), [['add', { a: 2, b: 3 }]]);
    const eventTypes = stream.events.map((event) => event.data.type);
    for (const type of ['response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed', 'response.mcp_call.in_progress', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done', 'response.mcp_call.completed']) {
      assert.ok(eventTypes.includes(type), `the stream has ${type}`);
    }
    // vLLM: two calls; the tools as functions, the call and its output given back.
    const requests = vllmRequests(from);
    assert.equal(requests.length, 2);
    const offered = (requests[0].tools as AnyJson[]).map((tool) => [tool.type, tool.name]);
    assert.ok(offered.some(([type, name]) => type === 'function' && name === 'calc__add'), JSON.stringify(offered));
    assert.ok(!JSON.stringify(requests).includes('"type":"mcp'), 'vLLM never sees an MCP type');
    const given = (requests[1].input as AnyJson[]).slice(1);
    assert.deepEqual(given.map((item) => item.type), ['function_call', 'function_call_output']);
    assert.equal(given[0].name, 'calc__add');
    assert.equal(given[1].call_id, given[0].call_id);
    assert.equal(given[1].output, '5');
    // usage: both vLLM calls.
    const input = requests.reduce((sum, body) => sum + simInputTokens(body), 0);
    assert.equal(response.usage.input_tokens, input);
    assert.equal(response.usage.total_tokens, response.usage.input_tokens + response.usage.output_tokens);
  });

  it('streamed, not streamed and background give the same response (the openai SDK as client)', async () => {
    const body = { model: 'm', input: 'add 20 and 22', tools: [calcTool()] };
    const json = await client.responses.create(body);
    const streamed = await createStream(gw.url, body);
    const background = await client.responses.create({ ...body, background: true });
    let polled = await client.responses.retrieve(background.id);
    // Read to the end through the resumable stream (no polling loop).
    const resumed = await send(`${gw.url}/v1/responses/${background.id}?stream=true`);
    checkStream(resumed.text());
    polled = await client.responses.retrieve(background.id);
    for (const response of [json, streamed.terminal, polled] as AnyJson[]) {
      checkResponseObject(response);
      assert.equal(response.status, 'completed');
      assert.deepEqual(types(response), ['mcp_list_tools', 'mcp_call', 'message']);
      assert.equal(itemsOf(response, 'mcp_call')[0].output, '42');
      assert.equal(finalText(response), 'Tool results: 42');
    }
    assert.equal(json.output_text, 'Tool results: 42');
    // What was stored is what the client got.
    const stored = await client.responses.retrieve(json.id);
    assert.deepEqual(stored, json);
  });

  it('rounds: calls named together run in parallel, the next round after their outputs are in', async () => {
    const from = since();
    const body = { model: 'm', input: 'add 1 and 2 and echo hi then slow 0', tools: [calcTool()] };
    const slowBefore = calc.calls.filter((c) => c.name === 'slow').length;
    const pending = createStream(gw.url, body);
    // Round two's slow call is in progress: round one's two calls are done by then.
    await calc.slowCalls(slowBefore + 1);
    assert.deepEqual(calc.calls.slice(-3).map((c) => c.name), ['add', 'echo', 'slow']);
    calc.releaseSlow();
    const stream = await pending;
    const response = stream.terminal;
    assert.deepEqual(types(response), ['mcp_list_tools', 'mcp_call', 'mcp_call', 'mcp_call', 'message']);
    assert.deepEqual(itemsOf(response, 'mcp_call').map((call) => [call.name, call.output]), [
      ['add', '3'],
      ['echo', 'echo: add 1 and 2 and echo hi then slow 0'],
      ['slow', 'slow done'],
    ]);
    assert.equal(vllmRequests(from).length, 3, 'one vLLM call per round, and the answer');
  });

  it('two servers: one call on each runs at the same time', async () => {
    const slowBefore = [calc, other].map((server) => server.calls.filter((c) => c.name === 'slow').length);
    const tools = [calcTool(), { type: 'mcp', server_label: 'other', server_url: other.url, require_approval: 'never' }];
    const pending = createStream(gw.url, { model: 'm', input: 'slow 0', tools });
    // Both are in progress before either is released: the calls overlap.
    await Promise.all([calc.slowCalls((slowBefore[0] as number) + 1), other.slowCalls((slowBefore[1] as number) + 1)]);
    calc.releaseSlow();
    other.releaseSlow();
    const response = (await pending).terminal;
    assert.deepEqual(itemsOf(response, 'mcp_call').map((call) => [call.server_label, call.name, call.status]), [
      ['calc', 'slow', 'completed'],
      ['other', 'slow', 'completed'],
    ]);
    // The two servers' tools were offered under different names.
    assert.deepEqual(types(response).slice(0, 2), ['mcp_list_tools', 'mcp_list_tools']);
  });

  it('approvals: the response ends with a request; approving runs the call, refusing tells the model', async () => {
    const tools = [{ type: 'mcp', server_label: 'calc', server_url: calc.url }]; // require_approval: OpenAI's default, always
    const callsBefore = calc.calls.length;
    const asked = await createStream(gw.url, { model: 'm', input: 'add 5 and 6', tools });
    assert.deepEqual(types(asked.terminal), ['mcp_list_tools', 'mcp_approval_request']);
    assert.equal(asked.terminal.status, 'completed');
    const request = itemsOf(asked.terminal, 'mcp_approval_request')[0];
    assert.match(request.id, /^mcpr_/);
    assert.deepEqual([request.name, request.server_label, JSON.parse(request.arguments)], ['add', 'calc', { a: 5, b: 6 }]);
    assert.equal(calc.calls.length, callsBefore, 'nothing ran before the approval');

    const listingsBefore = calc.listings;
    const approved = await createStream(gw.url, {
      model: 'm',
      previous_response_id: asked.terminal.id,
      input: [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }],
      tools,
    });
    assert.equal(approved.status, 200, approved.text);
    assert.deepEqual(types(approved.terminal), ['mcp_call', 'message']);
    const call = itemsOf(approved.terminal, 'mcp_call')[0];
    assert.deepEqual([call.approval_request_id, call.output, call.status], [request.id, '11', 'completed']);
    assert.equal(finalText(approved.terminal), 'Tool results: 11');
    assert.equal(calc.listings, listingsBefore, 'the tools the history listed were not listed again');

    const asked2 = await create(gw.url, { model: 'm', input: 'add 7 and 8', tools });
    const request2 = itemsOf(asked2.json(), 'mcp_approval_request')[0];
    const refused = await create(gw.url, {
      model: 'm',
      previous_response_id: asked2.json().id,
      input: [{ type: 'mcp_approval_response', approval_request_id: request2.id, approve: false, reason: 'not today' }],
      tools,
    });
    assert.equal(refused.status, 200, refused.text());
    assert.deepEqual(types(refused.json()), ['message']);
    assert.equal(finalText(refused.json()), 'Tool results: The user declined to run this tool call. Reason: not today');
    assert.ok(!calc.calls.slice(callsBefore).some((c) => c.args['a'] === 7), 'the refused call never ran');

    const unknown = await create(gw.url, {
      model: 'm',
      previous_response_id: asked2.json().id,
      input: [{ type: 'mcp_approval_response', approval_request_id: 'mcpr_nope', approve: true }],
      tools,
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, 'item_not_found');
  });

  it('require_approval filters and allowed_tools choose per tool', async () => {
    const from = since();
    const tools = [calcTool({ allowed_tools: { read_only: true }, require_approval: { never: { tool_names: ['add'] } } })];
    const response = (await createStream(gw.url, { model: 'm', input: 'add 1 and 1 and echo x', tools })).terminal;
    assert.deepEqual(
      (itemsOf(response, 'mcp_list_tools')[0].tools as AnyJson[]).map((tool) => tool.name),
      ['add', 'echo'],
      'read_only: only the tools annotated read-only',
    );
    assert.deepEqual(types(response).slice(1), ['mcp_call', 'mcp_approval_request']);
    assert.deepEqual((vllmRequests(from)[0].tools as AnyJson[]).map((tool) => tool.name), ['calc__add', 'calc__echo']);
    const listed = (await createStream(gw.url, { model: 'm', input: 'add 1 and 1', tools: [calcTool({ allowed_tools: ['add'] })] })).terminal;
    assert.deepEqual((itemsOf(listed, 'mcp_list_tools')[0].tools as AnyJson[]).map((tool) => tool.name), ['add']);
  });

  it('a continuation reuses the listed tools and gives vLLM the calls as calls with outputs', async () => {
    const first = await client.responses.create({ model: 'm', input: 'add 3 and 4', tools: [calcTool()] });
    const listings = calc.listings;
    const sessions = calc.initializations;
    const from = since();
    const second = (await createStream(gw.url, { model: 'm', previous_response_id: first.id, input: 'now echo bye', tools: [calcTool()] })).terminal;
    assert.deepEqual(types(second), ['mcp_call', 'message'], 'no second mcp_list_tools');
    assert.equal(calc.listings, listings);
    const history = vllmRequests(from)[0].input as AnyJson[];
    assert.deepEqual(history.map((item) => item.type ?? 'message'), ['message', 'function_call', 'function_call_output', 'message', 'message']);
    // Without tools, the history still goes to vLLM in a form it accepts (the sim checks as vLLM does).
    const third = await create(gw.url, { model: 'm', previous_response_id: second.id, input: 'thanks' });
    assert.equal(third.status, 200, third.text());
    // A stateless client replays the items itself: the list is reused from its input.
    const replay = await create(gw.url, { model: 'm', store: false, input: [...(first.output as AnyJson[]), { role: 'user', content: 'echo again' }], tools: [calcTool()] });
    assert.equal(replay.status, 200, replay.text());
    assert.deepEqual(types(replay.json()), ['mcp_call', 'message']);
    assert.equal(calc.listings, listings);
    assert.equal(calc.initializations, sessions, 'later requests reuse the session with the server');
    // In a conversation the same: the list it holds is reused.
    const conversation = await client.conversations.create({});
    await client.responses.create({ model: 'm', input: 'add 1 and 1', tools: [calcTool()], conversation: conversation.id });
    const inConversation = await client.responses.create({ model: 'm', input: 'echo more', tools: [calcTool()], conversation: conversation.id });
    assert.deepEqual(types(inConversation), ['mcp_call', 'message']);
    const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
    assert.deepEqual(
      items.data.map((item) => item.type),
      ['message', 'mcp_list_tools', 'mcp_call', 'message', 'message', 'mcp_call', 'message'],
    );
  });

  it("a client's own function call ends the response; MCP calls of the same turn have run", async () => {
    const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
    const response = (await createStream(gw.url, { model: 'm', input: 'add 2 and 2 and get_weather', tools: [calcTool(), weather] })).terminal;
    assert.equal(response.status, 'completed');
    assert.deepEqual(types(response), ['mcp_list_tools', 'mcp_call', 'function_call']);
    assert.equal(itemsOf(response, 'mcp_call')[0].output, '4');
    const call = itemsOf(response, 'function_call')[0];
    const next = await create(gw.url, {
      model: 'm',
      previous_response_id: response.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
      tools: [calcTool(), weather],
    });
    assert.equal(next.status, 200, next.text());
    assert.equal(finalText(next.json()), 'Tool results: 4 | sunny');
  });

  it("names stay apart: a client function with an MCP tool's name keeps it, the MCP tool gets another; tool_choice follows", async () => {
    const from = since();
    const mine = { type: 'function', name: 'calc__add', parameters: { type: 'object', properties: {}, required: [] } };
    const response = (
      await createStream(gw.url, {
        model: 'm',
        input: 'echo names',
        tools: [mine, calcTool({ allowed_tools: ['add', 'echo'] })],
        tool_choice: { type: 'mcp', server_label: 'calc', name: 'echo' },
      })
    ).terminal;
    const [first, second] = vllmRequests(from);
    assert.deepEqual((first.tools as AnyJson[]).map((tool) => tool.name), ['calc__add', 'calc__add_2', 'calc__echo']);
    assert.deepEqual(first.tool_choice, { type: 'function', name: 'calc__echo' });
    assert.equal(second.tool_choice, 'auto', 'a forced tool is forced once');
    assert.deepEqual(itemsOf(response, 'mcp_call').map((call) => call.name), ['echo']);
    assert.deepEqual(response.tool_choice, { type: 'mcp', server_label: 'calc', name: 'echo' }, 'the response shows what the client asked');
  });

  it('a failing tool, a slow one and a huge result fail or shrink their call, and the response goes on', async () => {
    const failed = (await createStream(gw.url, { model: 'm', input: 'fail now', tools: [calcTool()] })).terminal;
    const failedCall = itemsOf(failed, 'mcp_call')[0];
    assert.deepEqual([failedCall.status, failedCall.output], ['failed', null]);
    assert.match(failedCall.error, /the tool failed on purpose/);
    assert.match(finalText(failed), /^Tool results: Error: the tool failed on purpose/);

    const slow = (await createStream(gw.url, { model: 'm', input: 'slow 60', tools: [calcTool()] })).terminal;
    const slowCall = itemsOf(slow, 'mcp_call')[0];
    assert.equal(slowCall.status, 'failed');
    assert.match(slowCall.error, /MCP server 'calc' \(http:\/\/127\.0\.0\.1:\d+\) did not answer within 1 s/);
    assert.equal(slow.status, 'completed');
    calc.releaseSlow();

    const huge = (await createStream(gw.url, { model: 'm', input: 'huge 64', tools: [calcTool()] })).terminal;
    const hugeCall = itemsOf(huge, 'mcp_call')[0];
    assert.equal(hugeCall.status, 'completed');
    assert.ok(hugeCall.output.startsWith('x'.repeat(1024)));
    assert.match(hugeCall.output, /\n\[output truncated by the gateway: 1024 of 65536 bytes shown\]$/);
  });

  it('a server that is down, or answers garbage, fails its tool list; the model answers without it', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/mcp`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const garbage: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not MCP</html>'));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    try {
      const tools = [
        { type: 'mcp', server_label: 'dead', server_url: deadUrl, require_approval: 'never' },
        { type: 'mcp', server_label: 'junk', server_url: `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/mcp`, require_approval: 'never' },
      ];
      const stream = await createStream(gw.url, { model: 'm', input: 'add 1 and 1', tools });
      const response = stream.terminal;
      assert.equal(response.status, 'completed');
      const [dead, junk] = itemsOf(response, 'mcp_list_tools');
      assert.match(dead.error, /MCP server 'dead' \(http:\/\/127\.0\.0\.1:\d+\) refused the connection/);
      assert.ok(typeof junk.error === 'string' && junk.error.startsWith("MCP server 'junk'"), junk.error);
      assert.ok(stream.events.some((event) => event.data.type === 'response.mcp_list_tools.failed'));
      assert.equal(finalText(response), 'You said: add 1 and 1');
    } finally {
      garbage.closeAllConnections();
      await new Promise<void>((resolve) => garbage.close(() => resolve()));
    }
  });

  it('a server killed in the middle of a call fails that call; the response ends properly', { timeout: 30_000 }, async () => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'sim/mcp-server.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines: string[] = [];
      const waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];
      let buffered = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline = buffered.indexOf('\n');
        while (newline !== -1) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          lines.push(line);
          for (const waiter of waiters.splice(0)) {
            if (waiter.test(line)) waiter.resolve(line);
            else waiters.push(waiter);
          }
          newline = buffered.indexOf('\n');
        }
      });
      const lineMatching = (test: (line: string) => boolean): Promise<string> =>
        new Promise((resolve) => {
          const found = lines.find(test);
          if (found !== undefined) resolve(found);
          else waiters.push({ test, resolve });
        });
      const url = await lineMatching((line) => line.startsWith('http://'));
      const pending = createStream(gw.url, { model: 'm', input: 'slow 0', tools: [{ type: 'mcp', server_label: 'doomed', server_url: url, require_approval: 'never' }] });
      await lineMatching((line) => line === 'call slow');
      child.kill('SIGKILL');
      const response = (await pending).terminal;
      assert.equal(response.status, 'completed');
      const call = itemsOf(response, 'mcp_call')[0];
      assert.equal(call.status, 'failed');
      assert.match(call.error, /^MCP server 'doomed'/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('vLLM failing on a later call fails the response in the stream, and gives a JSON client its error', async () => {
    // The first vLLM call is the sim's; the second is refused with vLLM's 400.
    const refuse = (): void =>
      sim.enqueue((_req, res) => {
        const body = JSON.stringify({ error: { message: 'This model\'s maximum context length is 4096 tokens.', type: 'BadRequestError', param: null, code: 400 } });
        res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
    const arrived = sim.nextRequest();
    const pending = createStream(gw.url, { model: 'm', input: 'add 9 and 9', tools: [calcTool()] });
    await arrived;
    refuse();
    const stream = await pending;
    assert.equal(stream.status, 200);
    assert.equal(stream.terminal.status, 'failed');
    assert.match(stream.terminal.error.message, /maximum context length/);
    assert.deepEqual(types(stream.terminal), ['mcp_list_tools', 'mcp_call'], 'what ran is kept');
    assert.ok(stream.events.some((event) => event.data.type === 'error'));
    const stored = await send(`${gw.url}/v1/responses/${stream.terminal.id}`);
    assert.equal(stored.json().status, 'failed');

    const arrivedJson = sim.nextRequest();
    const json = postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'add 9 and 9', tools: [calcTool()] });
    await arrivedJson;
    refuse();
    const answer = await json;
    assert.equal(answer.status, 400, "vLLM's refusal, as the gateway passes it on without tools");
    assert.match(answer.text(), /maximum context length/);

    // vLLM's connection cut in the middle of the second call.
    const arrivedCut = sim.nextRequest();
    const cut = postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'add 9 and 9', tools: [calcTool()] });
    await arrivedCut;
    sim.enqueue((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Cut once the head and an event are out (before, it would be a reset the gateway retries).
      res.write('event: response.created\ndata: {"type":"response.created","response":{"id":"x","status":"in_progress","output":[]}}\n\n', () => res.destroy());
    });
    const cutAnswer = await cut;
    assert.equal(cutAnswer.status, 502, cutAnswer.text());
    assert.equal(cutAnswer.json().error.code, 'upstream_stream_interrupted');
  });

  it('a client that leaves during a tool call stops it: the server is told, nothing is stored', async () => {
    const cancelledBefore = calc.cancelled;
    const slowBefore = calc.calls.filter((c) => c.name === 'slow').length;
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'slow 0', tools: [calcTool()], stream: true }),
      signal: controller.signal,
    }).then((res) => res.text());
    await calc.slowCalls(slowBefore + 1);
    controller.abort();
    await pending.catch(() => undefined);
    await calc.cancelledCalls(cancelledBefore + 1);
  });

  it('cancelling a background response during a tool call stops the call and stores it cancelled', async () => {
    const cancelledBefore = calc.cancelled;
    const slowBefore = calc.calls.filter((c) => c.name === 'slow').length;
    const created = await client.responses.create({ model: 'm', input: 'slow 0', tools: [calcTool()], background: true });
    await calc.slowCalls(slowBefore + 1);
    const cancelled = await client.responses.cancel(created.id);
    assert.equal(cancelled.status, 'cancelled');
    await calc.cancelledCalls(cancelledBefore + 1);
    const stored = await client.responses.retrieve(created.id);
    assert.equal(stored.status, 'cancelled');
    assert.deepEqual(types(stored), ['mcp_list_tools', 'mcp_call']);
    assert.equal(itemsOf(stored, 'mcp_call')[0].status, 'incomplete');
  });

  it('a server of the older HTTP+SSE transport is reached after Streamable HTTP is refused', async () => {
    const response = (await createStream(gw.url, { model: 'm', input: 'echo old', tools: [{ type: 'mcp', server_label: 'legacy', server_url: legacy.url, require_approval: 'never' }] })).terminal;
    assert.equal(itemsOf(response, 'mcp_list_tools')[0].error, undefined);
    assert.equal(itemsOf(response, 'mcp_call')[0].output, 'echo: echo old');
  });

  it('headers and authorization reach the server, and are never returned, stored or logged', async () => {
    const tools = [calcTool({ headers: { 'x-custom': `custom-${SECRET}` }, authorization: SECRET })];
    const response = await client.responses.create({ model: 'm', input: 'echo secret?', tools });
    const seen = calc.calls.at(-1)?.headers;
    assert.equal(seen?.['authorization'], `Bearer ${SECRET}`);
    assert.equal(seen?.['x-custom'], `custom-${SECRET}`);
    const stored = await send(`${gw.url}/v1/responses/${response.id}`);
    for (const text of [JSON.stringify(response), stored.text(), gw.logText()]) assert.ok(!text.includes(SECRET), 'the secret is nowhere');
    assert.deepEqual((response.tools as AnyJson[])[0], { type: 'mcp', server_label: 'calc', server_url: calc.url, require_approval: 'never' });
  });

  it("an operator's server is named by its label; its headers never go to a URL a client chose", async () => {
    const response = await client.responses.create({ model: 'm', input: 'echo ops', tools: [{ type: 'mcp', server_label: 'ops' }] as AnyJson });
    assert.equal(itemsOf(response, 'mcp_call')[0].output, 'echo: echo ops');
    assert.equal(other.calls.at(-1)?.headers['x-ops-token'], SECRET);
    await client.responses.create({ model: 'm', input: 'echo mine', tools: [{ type: 'mcp', server_label: 'ops', server_url: calc.url, require_approval: 'never' }] });
    assert.equal(calc.calls.at(-1)?.name, 'echo');
    assert.equal(calc.calls.at(-1)?.headers['x-ops-token'], undefined);
    const unknown = await create(gw.url, { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'nobody' }] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json().error.param, 'tools[0].server_url');
  });

  it('max_tool_calls and --mcp-max-rounds bound the loop', async () => {
    const callsBefore = calc.calls.length;
    const from = since();
    const capped = (await createStream(gw.url, { model: 'm', input: 'add 1 and 2 and echo hi', tools: [calcTool()], max_tool_calls: 1 })).terminal;
    assert.deepEqual(itemsOf(capped, 'mcp_call').map((call) => call.status), ['completed', 'failed']);
    assert.match(itemsOf(capped, 'mcp_call')[1].error, /max_tool_calls \(1\)/);
    assert.equal(calc.calls.length, callsBefore + 1);
    assert.equal(capped.max_tool_calls, 1);
    const requests = vllmRequests(from);
    assert.equal(requests.length, 2);
    assert.equal(requests[1].tools, undefined, 'the budget spent, the model is offered no MCP tools');
    assert.equal(requests[0].max_tool_calls, undefined, 'the gateway keeps the budget');

    // --mcp-max-rounds 3: a fourth round is never offered.
    const from2 = since();
    const rounds = (await createStream(gw.url, { model: 'm', input: 'echo a then add 1 and 1 then fail x then huge 1', tools: [calcTool()] })).terminal;
    assert.deepEqual(itemsOf(rounds, 'mcp_call').map((call) => call.name), ['echo', 'add', 'fail']);
    assert.equal(vllmRequests(from2).length, 4);
    assert.equal(rounds.status, 'completed');
  });

  it('bad MCP tools are refused with a 400 naming the field, before anything runs', async () => {
    const from = since();
    const cases: Array<[AnyJson, string]> = [
      [{ type: 'mcp', server_url: calc.url }, 'tools[0].server_label'],
      [{ type: 'mcp', server_label: 'a', connector_id: 'connector_gmail' }, 'tools[0].connector_id'],
      [{ type: 'mcp', server_label: 'a', server_url: 'ftp://example.com' }, 'tools[0].server_url'],
      [{ type: 'mcp', server_label: 'a', server_url: 'http://169.254.169.254/mcp' }, 'tools[0].server_url'],
      [{ type: 'mcp', server_label: 'a', server_url: calc.url, require_approval: 'sometimes' }, 'tools[0].require_approval'],
      [{ type: 'mcp', server_label: 'a', server_url: calc.url, allowed_tools: 'add' }, 'tools[0].allowed_tools'],
      [{ type: 'mcp', server_label: 'a', server_url: calc.url, headers: { x: 1 } }, 'tools[0].headers'],
    ];
    for (const [tool, param] of cases) {
      const res = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', tools: [tool] });
      assert.equal(res.status, 400, JSON.stringify(tool));
      assert.equal(res.json().error.param, param, JSON.stringify(tool));
    }
    const twice = await postJson(`${gw.url}/v1/responses`, { model: 'm', input: 'x', tools: [calcTool(), calcTool()] });
    assert.equal(twice.json().error.param, 'tools[1].server_label');
    assert.equal(sim.requests.length, from, 'vLLM was never called');
  });
});

describe('MCP tools: --mcp-allow', () => {
  let sim: SimVllm;
  let calc: TestMcpServer;
  before(async () => {
    [sim, calc] = await Promise.all([startSimVllm(), startMcpServer()]);
  });
  after(() => closeAll(sim, calc));

  it('limits the URLs clients may name; "none" leaves only the operator\'s servers', async () => {
    const port = new URL(calc.url).port;
    const strict = await startGateway(sim.url, { 'mcp-allow': `http://localhost:${port}/*` });
    const none = await startGateway(sim.url, { 'mcp-allow': 'none' });
    try {
      const tool = (url: string): AnyJson => ({ type: 'mcp', server_label: 'calc', server_url: url, require_approval: 'never' });
      const allowed = await create(strict.url, { model: 'm', input: 'add 1 and 2', tools: [tool(`http://localhost:${port}/mcp`)] });
      assert.equal(allowed.status, 200, allowed.text());
      assert.equal(itemsOf(allowed.json(), 'mcp_call')[0].output, '3');
      const refused = await create(strict.url, { model: 'm', input: 'x', tools: [tool(calc.url)] });
      assert.equal(refused.status, 400);
      assert.match(refused.json().error.message, /not allowed by this gateway \(--mcp-allow\)/);
      const nothing = await create(none.url, { model: 'm', input: 'x', tools: [tool(calc.url)] });
      assert.equal(nothing.status, 400);
    } finally {
      await closeAll(strict, none);
    }
  });
});

describe('MCP tools: shutdown', () => {
  it('a gateway that shuts down while a tool runs stops the call and ends the response as failed', async () => {
    const [sim, calc] = await Promise.all([startSimVllm(), startMcpServer()]);
    const gw = await startGateway(sim.url);
    try {
      const events: string[] = [];
      const res = await fetch(`${gw.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', input: 'slow 0', stream: true, tools: [{ type: 'mcp', server_label: 'calc', server_url: calc.url, require_approval: 'never' }] }),
      });
      const reading = res.text().then((text) => events.push(...text.split('\n\n')));
      await calc.slowCalls(1);
      await gw.close();
      await calc.cancelledCalls(1);
      await reading;
      const failed = events.find((block) => block.startsWith('event: response.failed'));
      assert.ok(failed !== undefined, 'the stream ends with response.failed');
      assert.match(failed, /"code":"server_error","message":"[^"]*\(server_shutting_down\)"/);
    } finally {
      await closeAll(sim, calc);
    }
  });
});
