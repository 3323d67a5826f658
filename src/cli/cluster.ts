// --workers N: N gateway processes serving one port through node:cluster. The primary
// only supervises: it forks workers, restarts one that dies, answers their requests for
// cluster-wide metrics and rate-limit admissions (one set of buckets for all), and tells
// them to drain on shutdown.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type AddressInfo } from 'node:net';
import { VIA_NAME_ENV, type Config } from '../config/load-config.ts';
import type { MetricsSource } from '../http/gateway-deps.ts';
import type { GatewayLoad } from '../http/server.ts';
import { hasLimits, type RateLimits } from '../config/rate-limits.ts';
import type { Admission, LocalRateLimiter, RateLimiter } from '../limits/rate-limiter.ts';
import type { Logger } from '../observability/logger.ts';
import { AggregatorRegistry } from '../observability/metrics.ts';
import { BoxedMap } from '../collections/boxed-map.ts';

/** Messages between primary and workers, all tagged so other IPC traffic (prom-client's) passes by. */
export type ClusterMessage =
  | { readonly type: 'rg:listening'; readonly port: number }
  | { readonly type: 'rg:listen-failed'; readonly message: string }
  | { readonly type: 'rg:shutdown' }
  | { readonly type: 'rg:reload-keys' }
  | { readonly type: 'rg:upstream-ready' }
  | { readonly type: 'rg:metrics-request'; readonly id: number }
  | { readonly type: 'rg:load-request'; readonly id: number }
  | { readonly type: 'rg:load-response'; readonly id: number; readonly load: GatewayLoad }
  | { readonly type: 'rg:limit-admit'; readonly id: number; readonly tenant: string }
  | { readonly type: 'rg:limit-admission'; readonly id: number; readonly admission: Admission }
  | { readonly type: 'rg:limit-tokens'; readonly tenant: string; readonly tokens: number }
  | { readonly type: 'rg:metrics-response'; readonly id: number; readonly contentType: string; readonly body: string };

function isClusterMessage(value: unknown): value is ClusterMessage {
  return typeof value === 'object' && value !== null && String((value as { type?: unknown }).type).startsWith('rg:');
}

/** Set by the primary in each worker's environment: the port it listens on. */
export const WORKER_PORT_ENV = 'RG_CLUSTER_PORT';
/** Set to 1 in a worker's environment while vLLM is still starting (serve). */
export const UPSTREAM_STARTING_ENV = 'RG_UPSTREAM_STARTING';

/** A free port on `host`, from the system (for --gateway-port 0). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The delay before a dead worker's replacement doubles with each death in a row, up to the max. */
const RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 8_000;
/** A worker that lived this long ends a run of deaths: the next one restarts at once again. */
const STABLE_AFTER_MS = 30_000;
/** Deaths within this window that mean the workers crash in a loop. */
const CRASH_WINDOW_MS = 60_000;
const EXIT_MARGIN_MS = 5_000;

export interface RunningCluster {
  readonly port: number;
  /** Resolves with a one-line reason if the cluster cannot go on (workers keep failing). */
  readonly failed: Promise<string>;
  shutdown(graceMs: number): Promise<void>;
  /** SIGHUP: every worker re-reads the --api-keys file. */
  reloadKeys(): void;
  /** serve: vLLM is healthy; every worker (and every later one) sends it requests. */
  upstreamReady(): void;
  /** What every worker serves now; a worker that does not answer in time is left out. */
  load(): Promise<GatewayLoad>;
}

/** How long the primary waits for workers to say what they serve (for the shutdown line). */
const LOAD_REPLY_MS = 500;

function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
}

function describeDeath(code: number | null, signal: string | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`;
}

/**
 * The primary only supervises. Whatever happens to its workers it goes on: a dead worker
 * is replaced (after a delay that doubles while they keep dying, so a worker that dies at
 * once does not spin), even when all of them died at once. Workers that die more than
 * 3 per configured worker (at least 5) within a minute crash in a loop: the cluster
 * reports it as failed, and the command exits non-zero with that reason.
 */
export async function startCluster(config: Config, log: Logger, rateLimiter: LocalRateLimiter): Promise<RunningCluster> {
  const aggregator = new AggregatorRegistry();
  let shuttingDown = false;
  let reportFailure: (reason: string) => void = () => {};
  const failed = new Promise<string>((resolve) => {
    reportFailure = resolve;
  });
  const crashLimit = Math.max(5, 3 * config.server.workers);
  const deaths: number[] = [];
  let deathsInARow = 0;

  const answerMetrics = async (worker: Worker, id: number): Promise<void> => {
    const body = await aggregator.clusterMetrics();
    const reply: ClusterMessage = { type: 'rg:metrics-response', id, contentType: aggregator.contentType, body };
    if (worker.isConnected()) worker.send(reply);
  };

  const onDeath = (worker: Worker, startedAt: number, code: number | null, signal: string | null): void => {
    if (shuttingDown) return;
    const now = Date.now();
    if (now - startedAt >= STABLE_AFTER_MS) deathsInARow = 0;
    deathsInARow += 1;
    deaths.push(now);
    while (deaths.length > 0 && (deaths[0] as number) <= now - CRASH_WINDOW_MS) deaths.shift();
    if (deaths.length > crashLimit) {
      shuttingDown = true;
      reportFailure(
        `gateway workers keep dying (${deaths.length} in the last ${CRASH_WINDOW_MS / 1000} s, the last ${describeDeath(code, signal)}); giving up`,
      );
      return;
    }
    // The first replacement starts at once (with every worker dead the port is closed
    // until it listens); then the delay doubles while they keep dying.
    const delayMs = deathsInARow === 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** (deathsInARow - 2));
    log.error(
      { worker_pid: worker.process.pid, code, signal, restart_in_ms: delayMs },
      'gateway worker died; starting a new one',
    );
    // A timer that keeps the primary alive: with every worker dead it is all there is.
    setTimeout(() => {
      if (!shuttingDown) fork().catch((error: unknown) => log.error({ err: error }, 'worker restart failed'));
    }, delayMs);
  };

  // Node's cluster closes the port when its last worker is gone, and a new worker asking
  // for port 0 would get another one: workers are given the port, decided once.
  const port = config.server.port === 0 ? await freePort(config.server.host) : config.server.port;
  // Workers accept connections themselves (one listening socket, shared). With the
  // default round-robin, the primary accepts and hands each connection over; one handed to
  // a worker that dies at that moment stays open in the primary, unread and unanswered,
  // for ever (nodejs/node#3551, #21746; the soak found requests hung this way).
  cluster.schedulingPolicy = cluster.SCHED_NONE;

  /** Workers that said they listen: only they have asked to be told to drain. */
  const serving = new Set<Worker>();
  let upstreamStarting = config.serve !== undefined;

  const fork = (): Promise<number> => {
    const worker = cluster.fork({
      [WORKER_PORT_ENV]: String(port),
      [UPSTREAM_STARTING_ENV]: upstreamStarting ? '1' : '0',
      [VIA_NAME_ENV]: config.upstream.via,
      // A random state secret is drawn once, here: every worker must open what another sealed.
      GATEWAY_STATE_SECRET: config.security.stateSecret,
    });
    const startedAt = Date.now();
    // A message sent to a worker that has just been killed fails later, on the IPC
    // channel (EPIPE), as an 'error' event: its 'exit' handles the death, and without a
    // listener the error would end the primary.
    worker.on('error', (error: Error) => log.debug({ err: error, worker_pid: worker.process.pid }, 'message to a dying worker lost'));
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isClusterMessage(message)) return;
        if (message.type === 'rg:listening') {
          serving.add(worker);
          // Forked while vLLM was starting, and it is ready now.
          if (!upstreamStarting) worker.send({ type: 'rg:upstream-ready' } satisfies ClusterMessage);
          resolve(message.port);
        }
        else if (message.type === 'rg:listen-failed') reject(new Error(message.message));
        else if (message.type === 'rg:load-response') loadReplies.get(message.id)?.(message.load);
        else if (message.type === 'rg:limit-admit') {
          // The primary's limiter is local (admit answers at once): replies keep their order.
          const admission = rateLimiter.admit(message.tenant);
          if (worker.isConnected()) worker.send({ type: 'rg:limit-admission', id: message.id, admission } satisfies ClusterMessage);
        } else if (message.type === 'rg:limit-tokens') rateLimiter.recordTokens(message.tenant, message.tokens);
        else if (message.type === 'rg:metrics-request') {
          answerMetrics(worker, message.id).catch((error: unknown) => log.error({ err: error }, 'cluster metrics failed'));
        }
      });
      worker.once('exit', (code, signal) => {
        serving.delete(worker);
        reject(new Error(`worker ${describeDeath(code, signal)} during startup`));
        onDeath(worker, startedAt, code, signal);
      });
    });
  };

  let nextLoadId = 0;
  const loadReplies = new Map<number, (load: GatewayLoad) => void>();
  const askLoad = (worker: Worker): Promise<GatewayLoad> => {
    const id = nextLoadId++;
    return new Promise<GatewayLoad>((resolve) => {
      const timer = setTimeout(() => resolve({ requests: 0, streams: 0 }), LOAD_REPLY_MS);
      loadReplies.set(id, (load) => {
        clearTimeout(timer);
        resolve(load);
      });
      worker.send({ type: 'rg:load-request', id } satisfies ClusterMessage);
    }).finally(() => loadReplies.delete(id));
  };

  const ports = await Promise.all(Array.from({ length: config.server.workers }, () => fork()));
  return {
    port: ports[0] as number,
    failed,
    reloadKeys() {
      const message: ClusterMessage = { type: 'rg:reload-keys' };
      for (const worker of liveWorkers()) if (worker.isConnected()) worker.send(message);
    },
    upstreamReady() {
      upstreamStarting = false;
      const message: ClusterMessage = { type: 'rg:upstream-ready' };
      // A worker still starting hears it from its environment (forked before) or not at all
      // (forked after): those not listening yet get the news when they report listening.
      for (const worker of serving) if (worker.isConnected()) worker.send(message);
    },
    async load() {
      const loads = await Promise.all([...serving].filter((worker) => worker.isConnected()).map(askLoad));
      return loads.reduce((sum, load) => ({ requests: sum.requests + load.requests, streams: sum.streams + load.streams }), {
        requests: 0,
        streams: 0,
      });
    },
    async shutdown(graceMs) {
      shuttingDown = true;
      const workers = liveWorkers();
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) {
                resolve();
                return;
              }
              const timer = setTimeout(() => {
                worker.process.kill('SIGKILL');
              }, graceMs + EXIT_MARGIN_MS);
              worker.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              // A worker still starting serves nothing yet, and may not be listening for
              // messages: it is stopped with a signal. The others drain.
              const message: ClusterMessage = { type: 'rg:shutdown' };
              if (!serving.has(worker)) worker.process.kill('SIGTERM');
              else if (worker.isConnected()) worker.send(message);
            }),
        ),
      );
    },
  };
}

/** In a worker: /metrics asks the primary, which gathers every worker's registry. */
export function clusterMetricsSource(): MetricsSource {
  let nextId = 0;
  const pending = new Map<number, (reply: { contentType: string; body: string }) => void>();
  process.on('message', (message: unknown) => {
    if (isClusterMessage(message) && message.type === 'rg:metrics-response') {
      pending.get(message.id)?.({ contentType: message.contentType, body: message.body });
      pending.delete(message.id);
    }
  });
  return {
    render() {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        const request: ClusterMessage = { type: 'rg:metrics-request', id };
        process.send?.(request);
      });
    },
  };
}

/** How long a worker waits for the primary's admission before letting the request in. */
const ADMISSION_REPLY_MS = 1_000;

/**
 * In a worker: rate limits kept by the primary, so that N workers share one budget per
 * tenant. Only requests of a limited tenant ask (one IPC round trip); should the primary
 * not answer in time, the request is let in: a limit is not worth an outage.
 */
export class ClusterRateLimiter implements RateLimiter {
  readonly #limitsOf: (tenant: string) => RateLimits;
  // Not a Map: see BoxedMap (a pending admission holds its request).
  readonly #pending = new BoxedMap<number, (admission: Admission) => void>();
  #nextId = 0;

  /** `limitsOf`: the worker's own reading of the key file, to ask only for limited tenants. */
  constructor(limitsOf: (tenant: string) => RateLimits) {
    this.#limitsOf = limitsOf;
    process.on('message', (message: unknown) => {
      if (isClusterMessage(message) && message.type === 'rg:limit-admission') {
        this.#pending.get(message.id)?.(message.admission);
      }
    });
  }

  isLimited(tenant: string): boolean {
    return hasLimits(this.#limitsOf(tenant));
  }

  admit(tenant: string): Promise<Admission> {
    const id = this.#nextId++;
    return new Promise<Admission>((resolve) => {
      const timer = setTimeout(() => resolve({ headers: [], refusal: undefined }), ADMISSION_REPLY_MS);
      this.#pending.set(id, (admission) => {
        clearTimeout(timer);
        resolve(admission);
      });
      tellPrimary({ type: 'rg:limit-admit', id, tenant });
    }).finally(() => this.#pending.delete(id));
  }

  recordTokens(tenant: string, tokens: number): void {
    if (tokens > 0) tellPrimary({ type: 'rg:limit-tokens', tenant, tokens });
  }
}

/** In a worker: answers the primary's questions about what it serves now. */
export function answerLoadRequests(load: () => GatewayLoad): void {
  process.on('message', (message: unknown) => {
    if (isClusterMessage(message) && message.type === 'rg:load-request') {
      tellPrimary({ type: 'rg:load-response', id: message.id, load: load() });
    }
  });
}

/** In a worker: calls `handler` for each message of this type from the primary. */
export function onPrimaryMessage(type: ClusterMessage['type'], handler: () => void): void {
  process.on('message', (message: unknown) => {
    if (isClusterMessage(message) && message.type === type) handler();
  });
}

/** In a worker: resolves when the primary asks it to drain. */
export function whenPrimaryAsksShutdown(): Promise<void> {
  return new Promise((resolve) => onPrimaryMessage('rg:shutdown', resolve));
}

export function tellPrimary(message: ClusterMessage): void {
  process.send?.(message);
}
