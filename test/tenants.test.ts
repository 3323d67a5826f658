// Stored data belongs to whoever stored it: with --api-keys every key is a tenant (or
// names one), and another tenant finds nothing, through every route that reads or writes
// stored data. 404, never 403: a tenant cannot even learn that an id exists.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCommandLine } from '../src/config/load-config.ts';
import { ApiKeyGuard, ApiKeyLoadError } from '../src/http/api-key-guard.ts';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { killLeftovers, runCli } from './helpers/cli.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { send } from './helpers/http.ts';
import type { AnyJson } from './helpers/responses-api.ts';

const KEYS = 'key-alice alice, key-alice-2 alice, key-bob bob, key-anonymous';

describe('tenants', () => {
  let sim: SimVllm;
  let gw: TestGateway;
  before(async () => ({ sim, gw } = await startSimAndGateway({ 'api-keys': KEYS })));
  after(() => closeAll(gw, sim));

  const as = (key: string) => ({
    call: async (method: string, path: string, body?: object): Promise<{ status: number; json: AnyJson }> => {
      const res = await send(`${gw.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: res.json() };
    },
  });

  it("keep every stored object from every other tenant, with 404s that reveal nothing", async () => {
    const alice = as('key-alice');
    const response = (await alice.call('POST', '/v1/responses', { model: 'm', input: 'mine' })).json;
    const conversation = (await alice.call('POST', '/v1/conversations', { items: [{ role: 'user', content: 'private' }], metadata: { a: 'b' } })).json;
    const item = (await alice.call('GET', `/v1/conversations/${String(conversation.id)}/items`)).json.data[0];
    assert.ok(typeof response.id === 'string' && typeof item.id === 'string');

    for (const key of ['key-bob', 'key-anonymous']) {
      const other = as(key);
      const attempts: [string, string, object | undefined, string][] = [
        ['GET', `/v1/responses/${String(response.id)}`, undefined, 'response_not_found'],
        ['GET', `/v1/responses/${String(response.id)}/input_items`, undefined, 'response_not_found'],
        ['DELETE', `/v1/responses/${String(response.id)}`, undefined, 'response_not_found'],
        ['POST', '/v1/responses', { model: 'm', input: 'x', previous_response_id: response.id }, 'previous_response_not_found'],
        ['POST', '/v1/responses', { model: 'm', input: [{ type: 'item_reference', id: item.id }] }, 'item_not_found'],
        ['POST', '/v1/responses', { model: 'm', input: 'x', conversation: conversation.id }, 'conversation_not_found'],
        ['GET', `/v1/conversations/${String(conversation.id)}`, undefined, 'conversation_not_found'],
        ['POST', `/v1/conversations/${String(conversation.id)}`, { metadata: { taken: 'yes' } }, 'conversation_not_found'],
        ['DELETE', `/v1/conversations/${String(conversation.id)}`, undefined, 'conversation_not_found'],
        ['GET', `/v1/conversations/${String(conversation.id)}/items`, undefined, 'conversation_not_found'],
        ['POST', `/v1/conversations/${String(conversation.id)}/items`, { items: [{ role: 'user', content: 'injected' }] }, 'conversation_not_found'],
        ['GET', `/v1/conversations/${String(conversation.id)}/items/${String(item.id)}`, undefined, 'item_not_found'],
        ['DELETE', `/v1/conversations/${String(conversation.id)}/items/${String(item.id)}`, undefined, 'conversation_not_found'],
        ['POST', '/v1/conversations', { items: [{ type: 'item_reference', id: item.id }] }, 'item_not_found'],
      ];
      for (const [method, path, body, code] of attempts) {
        const res = await other.call(method, path, body);
        assert.equal(res.status, 404, `${key}: ${method} ${path}`);
        assert.equal(res.json.error.code, code, `${key}: ${method} ${path}`);
      }
    }

    // A second key of the same tenant sees it all; nothing was changed by the others.
    const alsoAlice = as('key-alice-2');
    assert.equal((await alsoAlice.call('GET', `/v1/responses/${String(response.id)}`)).status, 200);
    const conv = await alsoAlice.call('GET', `/v1/conversations/${String(conversation.id)}`);
    assert.deepEqual(conv.json.metadata, { a: 'b' });
    assert.equal((await alsoAlice.call('GET', `/v1/conversations/${String(conversation.id)}/items`)).json.data.length, 1);
    const continued = await alsoAlice.call('POST', '/v1/responses', { model: 'm', input: 'next', previous_response_id: response.id });
    assert.equal(continued.status, 200);
  });

  it("keep what each tenant stores apart, in both directions", async () => {
    const bob = as('key-bob');
    const mine = (await bob.call('POST', '/v1/responses', { model: 'm', input: 'bob here' })).json;
    assert.equal((await as('key-alice').call('GET', `/v1/responses/${String(mine.id)}`)).status, 404);
    assert.equal((await bob.call('GET', `/v1/responses/${String(mine.id)}`)).status, 200);
  });
});

describe('the key list', () => {
  it('may not be empty: an empty flag, variable or list of separators stops startup', () => {
    const argv = ['--llm-api-base', 'http://127.0.0.1:1'];
    assert.throws(() => parseCommandLine([...argv, '--api-keys', ''], {}), /--api-keys: it is empty/);
    assert.throws(() => parseCommandLine([...argv, '--api-keys=  '], {}), /--api-keys: it is empty/);
    assert.throws(() => parseCommandLine(argv, { GATEWAY_API_KEYS: '' }), /--api-keys: it is empty/);
    assert.throws(() => parseCommandLine([...argv, '--api-keys', ' , ,'], {}), /no key given/);
    const none = parseCommandLine(argv, {});
    assert.ok(none.kind === 'run' && none.config.security.apiKeys.kind === 'none', 'left out, there are no keys');
  });

  it('in a file: blank or comment-only is an error, a malformed line names its number', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rg-keys-'));
    const file = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    assert.throws(() => new ApiKeyGuard({ kind: 'file', path: file('blank', '\n  \n# only a comment\n') }), ApiKeyLoadError);
    assert.throws(() => new ApiKeyGuard({ kind: 'file', path: file('extra', 'k1 alice\nk2 bob extra\n') }), /line 2: expected/);
    assert.throws(() => new ApiKeyGuard({ kind: 'file', path: file('bad', 'k1 no/slashes\n') }), /line 1: .*not a tenant name/);
    const guard = new ApiKeyGuard({ kind: 'file', path: file('good', '# keys\nk1 alice\nk2\n') });
    assert.equal(guard.check(['authorization', 'Bearer k1']), 'alice');
    assert.match(guard.check(['authorization', 'Bearer k2']), /^key-[0-9a-f]{16}$/);
    assert.ok(!guard.check(['authorization', 'Bearer k2']).includes('k2'), 'a tenant derived from a key does not contain it');
  });

  it('empty stops the command with exit code 2 and one line', async () => {
    const run = runCli(['--llm-api-base', 'http://127.0.0.1:1', '--api-keys', '']);
    assert.equal((await run.exited).code, 2);
    assert.match(run.stderr().trim(), /^responses-gateway: invalid --api-keys: it is empty; .*$/);
    killLeftovers();
  });
});
