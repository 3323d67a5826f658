// The `responses-gateway` command. It only starts and stops things: parse the command
// line, (serve) start vLLM and wait for it, start the gateway (one process or a cluster),
// and on SIGINT/SIGTERM drain requests, stop vLLM and exit 0.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { renderHelp } from '../config/help.ts';
import { ConfigError, parseCommandLine, type Config } from '../config/load-config.ts';
import { GatewayError } from '../errors.ts';
import { describeLocation } from '../config/db-url.ts';
import { ApiKeyGuard, ApiKeyLoadError } from '../http/api-key-guard.ts';
import { McpServersFileError } from '../mcp/operator-servers.ts';
import { buildGateway } from '../app/build-gateway.ts';
import { gatewayVersion } from '../app/version.ts';
import type { GatewayLoad } from '../http/server.ts';
import { createLogger, flushLogger, type Logger } from '../observability/logger.ts';
import { GatewayMetrics, AggregatorRegistry } from '../observability/metrics.ts';
import { UpstreamClient } from '../upstream/upstream-client.ts';
import { UpstreamStatus } from '../upstream/upstream-status.ts';
import { LocalRateLimiter } from '../limits/rate-limiter.ts';
import {
  ClusterRateLimiter,
  UPSTREAM_STARTING_ENV,
  WORKER_PORT_ENV,
  answerLoadRequests,
  clusterMetricsSource,
  onPrimaryMessage,
  startCluster,
  tellPrimary,
  whenPrimaryAsksShutdown,
} from './cluster.ts';
import { startupFields } from './startup-line.ts';
import { StartupError, VllmProcess, describeExit } from './vllm-process.ts';

const PROGRAM = 'responses-gateway';
/** After vLLM died, in-flight requests fail fast anyway; do not wait the full grace period. */
const GRACE_AFTER_VLLM_EXIT_MS = 2_000;

function printError(message: string): void {
  process.stderr.write(`${PROGRAM}: ${message}\n`);
}


/** One line for whatever stopped the gateway from starting. */
function startProblem(error: unknown, config: Config): string {
  if (error instanceof ApiKeyLoadError || error instanceof McpServersFileError) return error.message;
  if (error instanceof GatewayError && error.code === 'store_unavailable') {
    const cause = error.cause instanceof Error ? error.cause.message : 'unknown error';
    return `cannot open the store at ${describeLocation(config.state.location)}: ${cause} (see --db-url)`;
  }
  return listenProblem(error, config);
}

function listenProblem(error: unknown, config: Config): string {
  const code = (error as { code?: unknown }).code;
  const where = `${config.server.host}:${config.server.port}`;
  if (code === 'EADDRINUSE') return `cannot listen on ${where}: the port is in use (see --gateway-port)`;
  if (code === 'EACCES') return `cannot listen on ${where}: permission denied (see --gateway-port)`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address here (see --gateway-host)`;
  return `cannot listen on ${where}: ${error instanceof Error ? error.message : String(error)}`;
}

interface Serving {
  readonly port: number;
  readonly failed: Promise<string>;
  shutdown(graceMs: number): Promise<void>;
  /** SIGHUP: re-read the --api-keys file. */
  reloadKeys(): void;
  /** serve: vLLM is healthy, requests may go to it. */
  upstreamReady(): void;
  /** Requests and streams being served now, every worker counted. */
  load(): Promise<GatewayLoad>;
}

/** Reloads a key file, keeping the keys in force when the new file is bad. `quiet`: the
 * cluster's primary, whose workers say it for themselves. */
function reloadKeys(guard: ApiKeyGuard, log: Logger, quiet = false): void {
  try {
    guard.reload();
    if (!quiet) log.info({ keys: guard.size }, 'reloaded the API keys');
  } catch (error) {
    log.error({ reason: error instanceof Error ? error.message : String(error) }, 'API keys not reloaded; the previous keys stay in force');
  }
}

function describeLoad(load: GatewayLoad): string {
  const requests = `${load.requests} ${load.requests === 1 ? 'request' : 'requests'} in flight`;
  return load.streams === 0 ? requests : `${requests} (${load.streams} ${load.streams === 1 ? 'stream' : 'streams'})`;
}

async function startSingle(config: Config, log: Logger, apiKeys: ApiKeyGuard): Promise<Serving> {
  const upstreamStatus = new UpstreamStatus(config.serve !== undefined);
  const gateway = buildGateway(config, { log, apiKeys, upstreamStatus });
  const address: AddressInfo = await gateway.listen();
  return {
    port: address.port,
    failed: new Promise(() => {}),
    shutdown: (graceMs) => gateway.shutdown(graceMs),
    reloadKeys: () => reloadKeys(apiKeys, log),
    upstreamReady: () => upstreamStatus.markReady(),
    load: () => Promise.resolve(gateway.load()),
  };
}

/** --workers N: the primary keeps the rate limits (its own key guard, reloaded with the workers'). */
async function startClusterOf(config: Config, log: Logger, apiKeys: ApiKeyGuard): Promise<Serving> {
  const running = await startCluster(config, log, new LocalRateLimiter((tenant) => apiKeys.limitsOf(tenant)));
  return {
    port: running.port,
    failed: running.failed,
    shutdown: (graceMs) => running.shutdown(graceMs),
    reloadKeys() {
      reloadKeys(apiKeys, log, true);
      running.reloadKeys();
    },
    upstreamReady: () => running.upstreamReady(),
    load: () => running.load(),
  };
}

/** serve: something already answering on vLLM's port would be adopted as vLLM (its
 * /health answered for it): an error before spawning, not after minutes of loading. */
function vllmPortAnswered(config: Config): Promise<boolean> {
  const { hostname, port } = new URL(config.upstream.origin);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

type StopReason = { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'vllm-exit' } | { kind: 'failed'; reason: string };

async function runPrimary(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  let apiKeys: ApiKeyGuard;
  try {
    apiKeys = new ApiKeyGuard(config.security.apiKeys, config.security.rateLimits);
  } catch (error) {
    if (!(error instanceof ApiKeyLoadError)) throw error;
    printError(error.message);
    return 2;
  }
  let vllm: VllmProcess | undefined;
  let signalled: ((signal: NodeJS.Signals) => void) | undefined;
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    signalled = resolve;
  });
  let signals = 0;
  /** Set once the gateway serves: the shutdown line says what it waits for. */
  let servingNow: Serving | undefined = undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      signalled?.(signal);
      const graceS = config.server.shutdownTimeoutMs / 1000;
      const again = signal === 'SIGINT' ? 'Ctrl-C again to stop now' : `${signal} again to stop now`;
      const said = (load: GatewayLoad): void => {
        const waiting = load.requests === 0 ? 'nothing in flight' : `${describeLoad(load)}, waiting up to ${graceS} s; ${again}`;
        log.info({ signal, in_flight: load.requests, streams: load.streams, grace_s: graceS }, `shutting down: ${waiting}`);
      };
      if (servingNow === undefined) said({ requests: 0, streams: 0 });
      else servingNow.load().then(said, () => said({ requests: 0, streams: 0 }));
      return;
    }
    // A second signal: stop now.
    printError(`${signal} again: stopping immediately`);
    vllm?.kill();
    flushLogger(log);
    process.exit(1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (config.serve !== undefined && (await vllmPortAnswered(config))) {
    printError(
      `vLLM's port ${config.serve.port} is already in use (something answers on ${config.upstream.origin}): ` +
        'stop it, or give vLLM another --port',
    );
    return 1;
  }

  // The gateway listens first: in serve mode its /health answers and its /ready says
  // "vLLM is starting" while vLLM loads its model, so orchestrators' probes work.
  let serving: Serving;
  try {
    serving = config.server.workers > 1 ? await startClusterOf(config, log, apiKeys) : await startSingle(config, log, apiKeys);
  } catch (error) {
    printError(startProblem(error, config));
    return 1;
  }
  servingNow = serving;
  process.on('SIGHUP', () => serving.reloadKeys());
  // Until a stop is asked for, any exit is a failure: should the process ever run out of
  // work while meant to serve, it must not report success.
  process.exitCode = 1;
  log.info(startupFields(config, apiKeys, serving.port), 'gateway listening');

  if (config.serve !== undefined) {
    const serve = config.serve;
    log.info({ model: serve.model, port: serve.port, bin: serve.vllmBin }, 'starting vLLM');
    vllm = new VllmProcess(serve);
    const probe = new UpstreamClient(config.upstream);
    const started = vllm.waitUntilReady(
      () => probe.checkHealth(),
      (elapsedMs, lastProblem) =>
        log.info({ elapsed_s: Math.round(elapsedMs / 1000), last_probe: lastProblem }, 'waiting for vLLM to become healthy'),
    );
    try {
      const outcome = await Promise.race([started.then(() => 'ready' as const), stopSignal.then(() => 'stop' as const)]);
      if (outcome === 'stop') {
        started.catch(() => {});
        await Promise.all([vllm.stop(), serving.shutdown(config.server.shutdownTimeoutMs)]);
        return 0;
      }
    } catch (error) {
      if (!(error instanceof StartupError)) throw error;
      printError(error.message);
      const stopped = vllm.hasExited ? undefined : vllm.stop();
      const [exit] = await Promise.all([stopped, serving.shutdown(Math.min(GRACE_AFTER_VLLM_EXIT_MS, config.server.shutdownTimeoutMs))]);
      // What the stop did (SIGTERM honoured, or SIGKILL after --vllm-stop-timeout) is worth a line.
      if (exit !== undefined) log.info({ status: describeExit(exit) }, 'vLLM stopped');
      return 1;
    } finally {
      await probe.close();
    }
    serving.upstreamReady();
    log.info({ upstream: config.upstream.origin, vllm_pid: vllm.pid }, 'vLLM is healthy');
  }

  const reasons: Promise<StopReason>[] = [
    stopSignal.then((signal) => ({ kind: 'signal', signal })),
    serving.failed.then((reason) => ({ kind: 'failed', reason })),
  ];
  if (vllm !== undefined) reasons.push(vllm.exited.then(() => ({ kind: 'vllm-exit' })));
  const reason = await Promise.race(reasons);

  if (reason.kind === 'vllm-exit') {
    const exit = await (vllm as VllmProcess).exited;
    printError(`vLLM ${describeExit(exit)}; stopping the gateway`);
    await serving.shutdown(Math.min(GRACE_AFTER_VLLM_EXIT_MS, config.server.shutdownTimeoutMs));
    flushLogger(log);
    return 1;
  }
  if (reason.kind === 'failed') {
    printError(reason.reason);
    await serving.shutdown(config.server.shutdownTimeoutMs);
    await vllm?.stop();
    return 1;
  }
  await serving.shutdown(config.server.shutdownTimeoutMs);
  if (vllm !== undefined) {
    log.info('stopping vLLM');
    const exit = await vllm.stop();
    log.info({ status: describeExit(exit) }, 'vLLM stopped');
  }
  log.info('gateway stopped');
  flushLogger(log);
  return 0;
}

async function runWorker(given: Config): Promise<number> {
  // The primary decided the port (see WORKER_PORT_ENV).
  const port = Number(process.env[WORKER_PORT_ENV] ?? given.server.port);
  const config: Config = { ...given, server: { ...given.server, port } };
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const metrics = new GatewayMetrics();
  // prom-client installs the worker's answer to the primary's metrics requests in the
  // AggregatorRegistry constructor; without one, /metrics in a cluster never completes.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries(metrics.registry);
  // Listened for before anything else: a stop asked for while the worker still starts
  // (the primary shutting down just as it replaced a dead worker) must not be missed.
  // A terminal's Ctrl-C reaches every process of the group: a worker drains just like on
  // the primary's request.
  const stopAsked = Promise.race([
    whenPrimaryAsksShutdown(),
    new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    }),
  ]);
  let gateway: ReturnType<typeof buildGateway>;
  let apiKeys: ApiKeyGuard;
  try {
    apiKeys = new ApiKeyGuard(config.security.apiKeys, config.security.rateLimits);
    const upstreamStatus = new UpstreamStatus(process.env[UPSTREAM_STARTING_ENV] === '1');
    onPrimaryMessage('rg:upstream-ready', () => upstreamStatus.markReady());
    const guard = apiKeys;
    const rateLimiter = new ClusterRateLimiter((tenant) => guard.limitsOf(tenant));
    gateway = buildGateway(config, { log, metrics, metricsSource: clusterMetricsSource(), apiKeys, upstreamStatus, rateLimiter });
    const address = await gateway.listen();
    tellPrimary({ type: 'rg:listening', port: address.port });
  } catch (error) {
    tellPrimary({ type: 'rg:listen-failed', message: startProblem(error, config) });
    return 1;
  }
  onPrimaryMessage('rg:reload-keys', () => reloadKeys(apiKeys, log));
  answerLoadRequests(() => gateway.load());
  await stopAsked;
  await gateway.shutdown(config.server.shutdownTimeoutMs);
  flushLogger(log);
  return 0;
}

export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let command;
  try {
    command = parseCommandLine(argv, env, (path) => readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof ConfigError) {
      printError(error.message);
      return 2;
    }
    throw error;
  }
  if (command.kind === 'help') {
    process.stdout.write(renderHelp());
    return 0;
  }
  if (command.kind === 'version') {
    process.stdout.write(`${gatewayVersion()}\n`);
    return 0;
  }
  return cluster.isWorker ? runWorker(command.config) : runPrimary(command.config);
}

runCli(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (error: unknown) => {
    printError(`unexpected failure: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
