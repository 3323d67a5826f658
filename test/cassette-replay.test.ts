// Every recording in test/fixtures/cassettes, replayed by the simulated vLLM chunk by chunk,
// reaches the client through the gateway byte for byte (with --passthrough-raw; the
// normalised replay is in output-conformance.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimVllm } from '../sim/vllm-sim.ts';
import { loadCassettes } from './helpers/cassettes.ts';
import { closeAll, startSimAndGateway, type TestGateway } from './helpers/gateway.ts';
import { postJson } from './helpers/http.ts';
import { recordedBytes, replayTurn } from './helpers/replay.ts';


let sim: SimVllm;
let gw: TestGateway;

before(async () => ({ sim, gw } = await startSimAndGateway({ 'passthrough-raw': 'true' })));
after(() => closeAll(gw, sim));

describe('cassette replay, byte for byte', () => {
  for (const cassette of loadCassettes()) {
    const turns = cassette.turns.filter((turn) => turn.request.path === '/v1/responses');
    for (const turn of turns) {
      const kind = turn.response.sse !== undefined ? 'streamed' : 'JSON';
      it(`${cassette.name} ${turn.filename} (${kind})`, async () => {
        sim.enqueue(replayTurn(turn));
        const res = await postJson(`${gw.url}${turn.request.path}`, turn.request.body);
        assert.equal(res.status, turn.response.status_code);
        assert.equal(res.text(), recordedBytes(turn));
      });
    }
  }
});
