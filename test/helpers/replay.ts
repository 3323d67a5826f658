// Replays a recorded cassette turn from the simulated vLLM: the recorded status,
// content type and body, an SSE stream written chunk by chunk as recorded.
import type { CustomHandler } from '../../sim/vllm-sim.ts';
import type { CassetteTurn } from './cassettes.ts';

export function recordedBytes(turn: CassetteTurn): string {
  const response = turn.response;
  return response.sse !== undefined ? response.sse.join('') : JSON.stringify(response.body);
}

export function replayTurn(turn: CassetteTurn): CustomHandler {
  return (_req, res) => {
    const response = turn.response;
    const contentType = response.headers['content-type'] ?? 'application/json';
    if (response.sse !== undefined) {
      res.writeHead(response.status_code, { 'content-type': contentType });
      for (const chunk of response.sse) res.write(chunk);
      res.end();
      return;
    }
    const body = recordedBytes(turn);
    res.writeHead(response.status_code, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}
