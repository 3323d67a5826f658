// Replays a recorded cassette turn (or given chunks) from the simulated vLLM: the
// recorded status, content type and body, an SSE stream written chunk by chunk.
import type { CustomHandler } from '../../sim/vllm-sim.ts';
import type { CassetteTurn } from './cassettes.ts';

export function recordedBytes(turn: CassetteTurn): string {
  const response = turn.response;
  return response.sse !== undefined ? response.sse.join('') : JSON.stringify(response.body);
}

/** An answer that writes these SSE chunks one write each, as vLLM would. */
export function sseChunks(chunks: readonly string[], status = 200, contentType = 'text/event-stream'): CustomHandler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': contentType });
    for (const chunk of chunks) res.write(chunk);
    res.end();
  };
}

export function replayTurn(turn: CassetteTurn): CustomHandler {
  const response = turn.response;
  const contentType = response.headers['content-type'] ?? 'application/json';
  if (response.sse !== undefined) return sseChunks(response.sse, response.status_code, contentType);
  return (_req, res) => {
    const body = recordedBytes(turn);
    res.writeHead(response.status_code, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}
