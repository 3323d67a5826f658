// The Responses API's WebSocket mode: GET /v1/responses with `Upgrade: websocket` (the `ws`
// library). The upgrade is checked as an HTTP request is (path, API key -> tenant, a
// gateway draining refuses it), with the refusal in OpenAI's JSON shape; an accepted socket
// is a ResponsesSocket. Every socket is pinged (a peer that stops answering is cut), closed
// after --websocket-idle-timeout without a message, and limited to --max-body-size per
// message (close code 1009). A shutdown closes idle sockets at once (1001) and the others
// when their response has ended.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError, renderErrorBody } from '../../errors.ts';
import type { GatewayDeps, GatewayState } from '../gateway-deps.ts';
import { SlotTable } from '../../collections/slot-table.ts';
import { ResponsesSocket, type SocketHooks } from './responses-socket.ts';

/** A peer that has not answered a ping within this is gone. */
const PING_EVERY_MS = 30_000;
const GOING_AWAY = 1001;
const NORMAL = 1000;

interface Open {
  readonly ws: WebSocket;
  readonly socket: ResponsesSocket;
  alive: boolean;
  lastMessageAt: number;
}

export class WebSocketEndpoint {
  readonly #deps: GatewayDeps;
  readonly #state: GatewayState | undefined;
  readonly #hooks: SocketHooks;
  readonly #server: WebSocketServer;
  readonly #open = new SlotTable<Open>();
  readonly #timer: NodeJS.Timeout;
  #draining = false;

  constructor(deps: GatewayDeps, hooks: SocketHooks) {
    this.#deps = deps;
    this.#state = deps.state;
    this.#hooks = hooks;
    this.#server = new WebSocketServer({ noServer: true, maxPayload: deps.config.server.maxBodyBytes, perMessageDeflate: false });
    const idleMs = deps.config.server.websocketIdleTimeoutMs;
    this.#timer = setInterval(() => this.#sweep(idleMs), Math.min(PING_EVERY_MS, idleMs));
    this.#timer.unref();
  }

  /** Node's 'upgrade' event: a WebSocket for GET /v1/responses, a JSON refusal otherwise. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, reason: string, error: GatewayError): void => {
      const body = renderErrorBody(error);
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    const path = (req.url ?? '').split('?')[0];
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      refuse(400, 'Bad Request', new GatewayError('invalid_request', 'Only WebSocket upgrades are supported (on GET /v1/responses); send the request without Upgrade.'));
      return;
    }
    if (req.method !== 'GET' || path !== '/v1/responses' || this.#state === undefined) {
      refuse(404, 'Not Found', new GatewayError('not_found', `Invalid URL (${String(req.method)} ${path}): WebSocket mode is GET /v1/responses.`));
      return;
    }
    if (this.#draining) {
      refuse(503, 'Service Unavailable', new GatewayError('server_shutting_down', 'The gateway is shutting down.'));
      return;
    }
    let tenant: string;
    try {
      tenant = this.#deps.apiKeys.check(req.rawHeaders);
    } catch (error) {
      refuse(401, 'Unauthorized', error instanceof GatewayError ? error : new GatewayError('invalid_api_key', 'Incorrect API key provided.'));
      return;
    }
    const state = this.#state;
    this.#server.handleUpgrade(req, socket, head, (ws) => {
      const open: Open = { ws, socket: new ResponsesSocket(ws, this.#deps, state, tenant, req.rawHeaders, this.#hooks), alive: true, lastMessageAt: Date.now() };
      const slot = this.#open.add(open);
      ws.on('pong', () => (open.alive = true));
      ws.on('message', () => (open.lastMessageAt = Date.now()));
      ws.on('error', () => ws.terminate());
      ws.on('close', () => this.#open.take(slot));
    });
  }

  /** Pings every socket; cuts those that did not answer the last ping, closes idle ones. */
  #sweep(idleMs: number): void {
    const now = Date.now();
    for (const open of this.#open.values()) {
      if (!open.alive) {
        open.ws.terminate();
        continue;
      }
      if (!open.socket.busy && now - open.lastMessageAt >= idleMs) {
        open.ws.close(NORMAL, 'idle');
        continue;
      }
      open.alive = false;
      open.ws.ping();
    }
  }

  /** Stops taking sockets; closes the idle ones now, the others once their response ended. */
  drain(): void {
    this.#draining = true;
    for (const open of this.#open.values()) {
      if (open.socket.busy) open.socket.closeWhenIdle(GOING_AWAY);
      else open.ws.close(GOING_AWAY, 'server shutting down');
    }
  }

  /** The end of a shutdown: every socket still open is cut. */
  close(): void {
    clearInterval(this.#timer);
    for (const open of this.#open.values()) open.ws.terminate();
    this.#server.close();
  }
}
