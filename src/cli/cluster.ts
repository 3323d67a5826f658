// --workers N: N gateway processes serving one port through node:cluster. The primary
// only supervises: it forks workers, restarts one that dies, answers their requests for
// cluster-wide metrics, and tells them to drain on shutdown.
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/load-config.ts';
import type { MetricsSource } from '../http/gateway-deps.ts';
import type { Logger } from '../observability/logger.ts';
import { AggregatorRegistry } from '../observability/metrics.ts';

/** Messages between primary and workers, all tagged so other IPC traffic (prom-client's) passes by. */
export type ClusterMessage =
  | { readonly type: 'rg:listening'; readonly port: number }
  | { readonly type: 'rg:listen-failed'; readonly message: string }
  | { readonly type: 'rg:shutdown' }
  | { readonly type: 'rg:reload-keys' }
  | { readonly type: 'rg:metrics-request'; readonly id: number }
  | { readonly type: 'rg:metrics-response'; readonly id: number; readonly contentType: string; readonly body: string };

function isClusterMessage(value: unknown): value is ClusterMessage {
  return typeof value === 'object' && value !== null && String((value as { type?: unknown }).type).startsWith('rg:');
}

const RESTART_DELAY_MS = 1_000;
const EXIT_MARGIN_MS = 5_000;

export interface RunningCluster {
  readonly port: number;
  /** Resolves with a one-line reason if the cluster cannot go on (workers keep failing). */
  readonly failed: Promise<string>;
  shutdown(graceMs: number): Promise<void>;
  /** SIGHUP: every worker re-reads the --api-keys file. */
  reloadKeys(): void;
}

function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
}

export async function startCluster(config: Config, log: Logger): Promise<RunningCluster> {
  const aggregator = new AggregatorRegistry();
  let shuttingDown = false;
  let reportFailure: (reason: string) => void = () => {};
  const failed = new Promise<string>((resolve) => {
    reportFailure = resolve;
  });
  let recentCrashes = 0;

  const answerMetrics = async (worker: Worker, id: number): Promise<void> => {
    const body = await aggregator.clusterMetrics();
    const reply: ClusterMessage = { type: 'rg:metrics-response', id, contentType: aggregator.contentType, body };
    if (worker.isConnected()) worker.send(reply);
  };

  const fork = (): Promise<number> => {
    const worker = cluster.fork();
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isClusterMessage(message)) return;
        if (message.type === 'rg:listening') resolve(message.port);
        else if (message.type === 'rg:listen-failed') reject(new Error(message.message));
        else if (message.type === 'rg:metrics-request') {
          answerMetrics(worker, message.id).catch((error: unknown) => log.error({ err: error }, 'cluster metrics failed'));
        }
      });
      worker.once('exit', (code, signal) => {
        reject(new Error(`worker exited during startup (code ${String(code)})`));
        if (shuttingDown) return;
        log.error({ worker_pid: worker.process.pid, code, signal }, 'gateway worker died; starting a new one');
        recentCrashes += 1;
        setTimeout(() => {
          recentCrashes -= 1;
        }, 60_000).unref();
        if (recentCrashes > 5) {
          reportFailure('gateway workers keep dying (more than 5 in a minute)');
          return;
        }
        setTimeout(() => {
          if (!shuttingDown) fork().catch((error: unknown) => log.error({ err: error }, 'worker restart failed'));
        }, RESTART_DELAY_MS).unref();
      });
    });
  };

  const ports = await Promise.all(Array.from({ length: config.server.workers }, () => fork()));
  return {
    port: ports[0] as number,
    failed,
    reloadKeys() {
      const message: ClusterMessage = { type: 'rg:reload-keys' };
      for (const worker of liveWorkers()) if (worker.isConnected()) worker.send(message);
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
              const message: ClusterMessage = { type: 'rg:shutdown' };
              if (worker.isConnected()) worker.send(message);
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
