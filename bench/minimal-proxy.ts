// The floors, for comparison only. Takes the gateway's --llm-api-base and --gateway-port.
//
// Without flags: the least a node:http + undici proxy does (read the body, dispatch it
// with the client's headers, relay status, headers and body back). No routing, no
// logging, no metrics, no normalization: what Node itself costs.
//
// --normalize: the least a *normalizing* proxy must add to that, done the cheapest way
// known: the request read as JSON (a gateway must know what it is asked), every event of
// a stream found in vLLM's bytes and given its own item id and sequence number by splicing
// bytes (no string decode, no parse, one write per read), and a JSON answer parsed, its
// ids replaced and serialized again. No validation, state, metrics or logs. What this
// costs over the plain floor is what any Node.js gateway pays to normalize.
import { createServer, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { isDroppedFromRequest } from '../src/upstream/hop-by-hop.ts';

const argv = process.argv.slice(2);
const flag = (name: string): string => argv[argv.indexOf(`--${name}`) + 1] ?? '';
const normalize = argv.includes('--normalize');
const pool = new Pool(flag('llm-api-base'), { connections: null, pipelining: 1, keepAliveTimeout: 4_000 });

const EVENT_END = Buffer.from('\n\n');
const ITEM_ID = Buffer.from('"item_id":"');
const SEQUENCE_NUMBER = Buffer.from('"sequence_number":');
const GATEWAY_ITEM_ID = Buffer.from('msg_0123456789abcdef0123456789abcdef');

/** A stream's events with their item id and sequence number replaced, in bytes. */
class EventSplicer {
  #held: Buffer | undefined;
  #sequence = 0;

  /** The whole events completed by `chunk`, rewritten, as one buffer (or none yet). */
  push(chunk: Buffer): Buffer | undefined {
    const bytes = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
    const pieces: Buffer[] = [];
    let start = 0;
    for (let end = bytes.indexOf(EVENT_END, start); end !== -1; end = bytes.indexOf(EVENT_END, start)) {
      let at = start;
      const id = bytes.indexOf(ITEM_ID, at);
      if (id !== -1 && id < end) {
        const value = id + ITEM_ID.length;
        pieces.push(bytes.subarray(at, value), GATEWAY_ITEM_ID);
        at = bytes.indexOf(0x22, value);
      }
      const sequence = bytes.indexOf(SEQUENCE_NUMBER, at);
      if (sequence !== -1 && sequence < end) {
        let digits = sequence + SEQUENCE_NUMBER.length;
        pieces.push(bytes.subarray(at, digits), Buffer.from(String(this.#sequence++)));
        while (bytes[digits] !== undefined && (bytes[digits] as number) >= 0x30 && (bytes[digits] as number) <= 0x39) digits++;
        at = digits;
      }
      pieces.push(bytes.subarray(at, end + 2));
      start = end + 2;
    }
    this.#held = start === bytes.length ? undefined : bytes.subarray(start);
    return pieces.length === 0 ? undefined : Buffer.concat(pieces);
  }
}

/** A whole JSON answer with the response's and its items' ids replaced. */
function normalizedJson(body: Buffer): Buffer {
  const response = JSON.parse(body.toString('utf8')) as { id?: string; output?: { id?: string }[] };
  response.id = 'resp_0123456789abcdef0123456789abcdef';
  for (const item of response.output ?? []) item.id = GATEWAY_ITEM_ID.toString();
  return Buffer.from(JSON.stringify(response));
}

/**
 * The client's request headers, as any proxy forwards them (the simulator reads its
 * script from x-sim: a floor that dropped it streamed the simulator's default 3-delta
 * answer where the gateway streamed 100, until 2026-12-02).
 */
function forwardedHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!isDroppedFromRequest(name.toLowerCase())) out.push(name, raw[i + 1] as string);
  }
  return out;
}

function write(res: ServerResponse, controller: Dispatcher.DispatchController, chunk: Buffer): void {
  if (!res.write(chunk)) {
    controller.pause();
    res.once('drain', () => controller.resume());
  }
}

createServer({ noDelay: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const normalizing = normalize && req.method === 'POST';
    const stream = normalizing && (JSON.parse(body.toString('utf8')) as { stream?: boolean }).stream === true;
    const events = stream ? new EventSplicer() : undefined;
    const whole: Buffer[] | undefined = normalizing && !stream ? [] : undefined;
    let status = 200;
    let rawHeaders: string[] = [];
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(controller, statusCode) {
        status = statusCode;
        rawHeaders = ((controller.rawHeaders ?? []) as Buffer[]).map((part) => part.toString());
        if (whole === undefined) res.writeHead(status, rawHeaders);
      },
      onResponseData(controller, chunk) {
        if (whole !== undefined) whole.push(chunk);
        else if (events === undefined) write(res, controller, chunk);
        else {
          const rewritten = events.push(chunk);
          if (rewritten !== undefined) write(res, controller, rewritten);
        }
      },
      onResponseEnd() {
        if (whole === undefined) {
          res.end();
          return;
        }
        const answer = Buffer.concat(whole);
        const json = status === 200 ? normalizedJson(answer) : answer;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': json.length });
        res.end(json);
      },
      onResponseError() {
        res.destroy();
      },
    };
    pool.dispatch({ method: req.method ?? 'GET', path: req.url ?? '/', headers: forwardedHeaders(req.rawHeaders), body }, handler);
  });
}).listen(Number(flag('gateway-port')), '127.0.0.1');
