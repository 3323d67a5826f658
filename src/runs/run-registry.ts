// The runs of this process that outlive a request: background responses and foreground
// ones detached from their client. It admits them (--max-background-runs, then a FIFO
// queue), keeps them alive in the store (a heartbeat), carries out cancellations asked on
// other processes, ends the runs of processes that died, and expires old event logs.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { EventRenderer } from '../responses/event-renderer.ts';
import type { Json } from '../responses/items.ts';
import type { ResponsesService } from '../responses/responses-service.ts';
import { closingEvents, snapshotFromEvents } from '../responses/run-snapshot.ts';
import { responseError } from '../responses/response-object.ts';
import type { RunListener, RunState, Store } from '../store/store.ts';
import type { Run } from './run.ts';
import { readRunLog, RunLogWriter } from './run-log-writer.ts';
import { BoxedMap } from '../collections/boxed-map.ts';

export interface RunRegistryOptions {
  readonly store: Store;
  readonly responses: ResponsesService;
  readonly log: Logger;
  /** --max-background-runs: runs at once; more wait in `queued`. */
  readonly maxBackgroundRuns: number;
  /** --background-event-ttl: how long an ended run's event log is kept (ms); null keeps it. */
  readonly eventTtlMs: number | null;
}

/** How often the keeper looks for cancellations asked on other processes. */
const TICK_MS = 200;
const HEARTBEAT_EVERY_TICKS = 10;
const REAP_EVERY_TICKS = 25;
/** Logs are expired at least every minute (sooner with a shorter --background-event-ttl). */
const MAX_EXPIRE_INTERVAL_MS = 60_000;
/** A run whose owner has not beaten for this long belongs to a dead process. */
const STALE_AFTER_MS = 15_000;
/** At most this many runs wait in the queue; more get 429. */
const MAX_QUEUED = 10_000;

/** This process, as the owner of its runs: host/pid/random (the pid finds dead owners here). */
function ownerId(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

/** Owners on this machine whose process no longer exists. */
function deadLocalOwners(owners: readonly string[]): string[] {
  const host = hostname();
  return owners.filter((owner) => {
    const [ownerHost, pidText] = owner.split('/');
    const pid = Number(pidText);
    if (ownerHost !== host || !Number.isInteger(pid) || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  });
}

/** How a run begins: at once, or waiting for a slot. */
type RunStart = 'queued' | 'in_progress';

export class RunRegistry {
  readonly owner = ownerId();
  readonly #options: RunRegistryOptions;
  readonly #store: Store;
  // Not Maps: see BoxedMap (a run holds its whole response; entries come and go per run).
  readonly #live = new BoxedMap<string, Run>();
  readonly #queue: Run[] = [];
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;
  #unwatch: (() => Promise<void>) | undefined;
  /** Listeners by run id, told when any process appends to that run's log. */
  readonly #watchers = new BoxedMap<string, Set<() => void>>();
  #notifies = false;
  #closing = false;
  readonly #expireEveryTicks: number;

  constructor(options: RunRegistryOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#expireEveryTicks = Math.max(1, Math.round(Math.min(options.eventTtlMs ?? MAX_EXPIRE_INTERVAL_MS, MAX_EXPIRE_INTERVAL_MS) / TICK_MS));
  }

  /** Starts the keeper; ends the runs dead processes left (at once, then periodically). */
  async open(): Promise<void> {
    const listener: RunListener = (runId) => this.#changed(runId);
    try {
      this.#unwatch = await this.#store.watchRuns(listener);
      this.#notifies = this.#unwatch !== undefined;
    } catch (error) {
      this.#options.log.warn({ err: error }, 'cannot listen for background response events; polling instead');
    }
    this.#timer = setInterval(() => this.#keep(), TICK_MS);
    this.#timer.unref();
    await this.#reap().catch((error: unknown) => this.#options.log.warn({ err: error }, 'ending the runs of stopped processes failed'));
  }

  /** True when another process's appends are announced (PostgreSQL), false when readers poll. */
  get notifies(): boolean {
    return this.#notifies;
  }

  get(runId: string): Run | undefined {
    return this.#live.get(runId);
  }

  /**
   * Admits a background run: its row is stored (so any process can read it) before this
   * resolves; it starts now, or waits in `queued` behind --max-background-runs.
   */
  async startBackground(run: Run): Promise<RunStart> {
    if (this.#closing) throw new GatewayError('server_shutting_down', 'The gateway is shutting down; no background response can start.');
    if (this.#queue.length >= MAX_QUEUED) {
      throw new GatewayError('background_runs_full', 'Too many background responses are waiting; retry later.', { headers: { 'retry-after': '5' } });
    }
    const status: RunStart = this.#running < this.#options.maxBackgroundRuns ? 'in_progress' : 'queued';
    await this.#persist(run, status);
    this.#live.set(run.id, run);
    if (status === 'in_progress') {
      this.#running += 1;
      run.start();
    } else {
      this.#queue.push(run);
    }
    return status;
  }

  /** A foreground run whose client left goes on as a background one (--detach-on-disconnect). */
  detach(run: Run): void {
    if (this.#closing) {
      run.failFromGateway(interrupted());
      return;
    }
    this.#running += 1;
    this.#live.set(run.id, run);
    this.#persist(run, 'in_progress').catch(() => undefined);
  }

  /** Writes the run's row; from then on its events go to the log. */
  #persist(run: Run, status: RunStart): Promise<void> {
    const created = this.#store.createRun({
      id: run.id,
      tenant: run.tenant,
      createdAt: Date.now(),
      status,
      base: JSON.stringify(run.initialResponse(status)),
      pending: JSON.stringify(run.plan.pending),
      owner: this.owner,
    });
    run.persistTo(new RunLogWriter(this.#store, run.id, status, () => this.#options.log, created));
    return created;
  }

  /** Called by every run this registry holds when it has ended. */
  ended(run: Run): void {
    if (this.#live.get(run.id) !== run) return;
    this.#live.delete(run.id);
    const queued = this.#queue.indexOf(run);
    if (queued !== -1) this.#queue.splice(queued, 1);
    else this.#running -= 1;
    while (this.#running < this.#options.maxBackgroundRuns && this.#queue.length > 0) {
      const next = this.#queue.shift() as Run;
      this.#running += 1;
      next.start();
    }
  }

  /** Calls `listener` whenever another process appends to this run's log (PostgreSQL). */
  watch(runId: string, listener: () => void): () => void {
    let set = this.#watchers.get(runId);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(runId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#watchers.delete(runId);
    };
  }

  #changed(runId: string): void {
    for (const listener of this.#watchers.get(runId) ?? []) listener();
    const run = this.#live.get(runId);
    // Perhaps a cancellation asked elsewhere: the keeper checks at once.
    if (run !== undefined) this.#checkCancellations().catch(() => undefined);
  }

  // --- the keeper ------------------------------------------------------------------------------

  #keep(): void {
    this.#tick += 1;
    const work: Promise<unknown>[] = [];
    if (this.#live.size > 0) {
      work.push(this.#checkCancellations());
      if (this.#tick % HEARTBEAT_EVERY_TICKS === 0) work.push(this.#store.heartbeatRuns(this.owner, Date.now()));
    }
    if (this.#tick % REAP_EVERY_TICKS === 0) work.push(this.#reap());
    if (this.#tick % this.#expireEveryTicks === 0) work.push(this.#expire());
    // A failing database is the store's to report; the keeper tries again next tick.
    for (const promise of work) promise.catch(() => undefined);
  }

  async #checkCancellations(): Promise<void> {
    const ids = await this.#store.runsToCancel(this.owner);
    for (const id of ids) await this.#live.get(id)?.cancel();
  }

  async #expire(): Promise<void> {
    if (this.#options.eventTtlMs === null) return;
    const before = Date.now() - this.#options.eventTtlMs;
    while ((await this.#store.expireRuns(before, 500)) === 500);
  }

  /** Ends, as failed, the runs of processes that stopped (their output so far is kept). */
  async #reap(): Promise<void> {
    const now = Date.now();
    const dead = deadLocalOwners(await this.#store.runOwners());
    const claimed = await this.#store.claimStaleRuns(this.owner, now - STALE_AFTER_MS, dead, now, 20);
    for (const run of claimed) await this.#endInterrupted(run);
  }

  async #endInterrupted(run: RunState): Promise<void> {
    const events = await readRunLog(this.#store, run.id);
    const snapshot = snapshotFromEvents(JSON.parse(run.base) as Json, events);
    const progress = { now: Date.now(), finished: true };
    if (snapshot.terminal) {
      // It ended and was stored; only its log was left open.
      await this.#store.appendRunEvents(run.id, events.length, [], { ...progress, status: String(snapshot.response['status']) });
      return;
    }
    const error = interrupted();
    // The items left open are closed as the normalizer closes a failing stream, numbered on
    // from the log's last event.
    const render = new EventRenderer(events.length);
    const closing = closingEvents(snapshot, render);
    const failed: Json = { ...snapshot.response, status: 'failed', completed_at: null, output: closing.output, error: responseError(error.code, error.message) };
    const json = JSON.stringify(failed);
    await this.#options.responses.saveInterrupted(run.pending, failed, json);
    const tail = [...closing.events, render.error(error), render.responseEvent('response.failed', json)];
    await this.#store.appendRunEvents(run.id, events.length, tail, { ...progress, status: 'failed' });
    this.#options.log.warn({ response_id: run.id, events: events.length }, 'a background response whose process stopped was ended as failed');
  }

  /**
   * Shutdown: running runs get the grace period to finish; then they, and the queued ones,
   * are ended as failed (run_interrupted) with their output so far.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    const runs = [...this.#live.values()];
    if (runs.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(runs.map((run) => run.whenEnded())),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      const left = [...this.#live.values()];
      for (const run of left) run.failFromGateway(interrupted());
      // Their failed responses and logs are written before the store closes.
      await Promise.race([Promise.all(left.map((run) => run.whenEnded())), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    }
    await this.#unwatch?.().catch(() => undefined);
  }
}

function interrupted(): GatewayError {
  return new GatewayError(
    'run_interrupted',
    'The gateway process running this background response stopped before it finished; the output so far is kept.',
  );
}
