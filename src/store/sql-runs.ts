// The run log's algorithms, written once for both databases like sql-store.ts: a run's
// row (status, owner, heartbeat, the cancel flag) and its events, appended in batches.
import type { SqlDialect } from './sql/backend.ts';
import { all, exec, first, type Row, type Work } from './sql/work.ts';
import type { NewRun, RunEvent, RunEventPage, RunProgress, RunState } from './store.ts';

/** The channel PostgreSQL notifies on; its payload is a run id. */
export const RUNS_CHANNEL = 'responses_gateway_runs';

const RUN_COLUMNS = 'id, tenant, created_at, status, base, pending, next_seq, owner, cancel_requested, finished_at';

function toRun(row: Row): RunState {
  return {
    id: row['id'] as string,
    tenant: row['tenant'] as string,
    createdAt: Number(row['created_at']),
    status: row['status'] as string,
    base: row['base'] as string,
    pending: row['pending'] as string,
    nextSeq: Number(row['next_seq']),
    owner: row['owner'] as string,
    cancelRequested: Number(row['cancel_requested']) !== 0,
    finished: row['finished_at'] !== null && row['finished_at'] !== undefined,
  };
}

export function* createRun(run: NewRun): Work<void> {
  yield* exec(
    `INSERT INTO runs (id, tenant, created_at, status, base, pending, next_seq, owner, heartbeat_at, cancel_requested)
      VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, 0)`,
    run.id,
    run.tenant,
    run.createdAt,
    run.status,
    run.base,
    run.pending,
    run.owner,
    run.createdAt,
  );
}

export function* appendRunEvents(dialect: SqlDialect, runId: string, firstSeq: number, events: readonly string[], progress: RunProgress): Work<void> {
  if (events.length > 0) {
    yield* exec(
      'INSERT INTO run_events (run_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)',
      runId,
      firstSeq,
      firstSeq + events.length - 1,
      events.join(''),
    );
  }
  yield* exec(
    'UPDATE runs SET next_seq = ?, status = ?, heartbeat_at = ?, finished_at = ? WHERE id = ?',
    firstSeq + events.length,
    progress.status,
    progress.now,
    progress.finished ? progress.now : null,
    runId,
  );
  if (dialect.notify !== undefined) yield* exec(dialect.notify, runId);
}

export function* getRun(tenant: string, runId: string): Work<RunState | undefined> {
  const row = yield* first(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ? AND tenant = ?`, runId, tenant);
  return row === undefined ? undefined : toRun(row);
}

export function* readRunEvents(runId: string, afterSeq: number, limit: number): Work<RunEventPage> {
  const rows = yield* all(
    'SELECT first_seq, data FROM run_events WHERE run_id = ? AND last_seq > ? ORDER BY first_seq LIMIT ?',
    runId,
    afterSeq,
    limit,
  );
  const events: RunEvent[] = [];
  for (const row of rows) {
    // Events end with a blank line, which no event holds inside (SSE).
    const data = row['data'] as string;
    let seq = Number(row['first_seq']);
    for (let start = 0; start < data.length; seq++) {
      const end = data.indexOf('\n\n', start) + 2;
      const stop = end === 1 ? data.length : end;
      if (seq > afterSeq) events.push({ seq, data: data.slice(start, stop) });
      start = stop;
    }
  }
  return { events, more: rows.length === limit };
}

export function* requestRunCancel(dialect: SqlDialect, tenant: string, runId: string): Work<RunState | undefined> {
  const changed = yield* exec('UPDATE runs SET cancel_requested = 1 WHERE id = ? AND tenant = ? AND finished_at IS NULL', runId, tenant);
  if (changed > 0 && dialect.notify !== undefined) yield* exec(dialect.notify, runId);
  return yield* getRun(tenant, runId);
}

export function* runsToCancel(owner: string): Work<string[]> {
  const rows = yield* all('SELECT id FROM runs WHERE owner = ? AND cancel_requested = 1 AND finished_at IS NULL', owner);
  return rows.map((row) => row['id'] as string);
}

export function* heartbeatRuns(owner: string, now: number): Work<void> {
  yield* exec('UPDATE runs SET heartbeat_at = ? WHERE owner = ? AND finished_at IS NULL', now, owner);
}

export function* runOwners(): Work<string[]> {
  return (yield* all('SELECT DISTINCT owner FROM runs WHERE finished_at IS NULL')).map((row) => row['owner'] as string);
}

export function* claimStaleRuns(
  dialect: SqlDialect,
  owner: string,
  staleBefore: number,
  deadOwners: readonly string[],
  now: number,
  limit: number,
): Work<RunState[]> {
  const stale = `finished_at IS NULL AND (heartbeat_at < ? OR owner IN (SELECT d.value FROM ${dialect.orderedList('d', 'text')}))`;
  const due = yield* all(
    `SELECT id FROM runs WHERE ${stale} ORDER BY heartbeat_at LIMIT ?${dialect.forUpdateSkipLocked}`,
    staleBefore,
    dialect.list(deadOwners),
    limit,
  );
  const claimed: RunState[] = [];
  for (const row of due) {
    // Tested again: a process that came back to life in between keeps its run.
    const taken = yield* first(
      `UPDATE runs SET owner = ?, heartbeat_at = ? WHERE id = ? AND ${stale} RETURNING ${RUN_COLUMNS}`,
      owner,
      now,
      row['id'] as string,
      staleBefore,
      dialect.list(deadOwners),
    );
    if (taken !== undefined) claimed.push(toRun(taken));
  }
  return claimed;
}

export function* expireRuns(dialect: SqlDialect, finishedBefore: number, limit: number): Work<number> {
  const due = yield* all(
    `SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?${dialect.forUpdateSkipLocked}`,
    finishedBefore,
    limit,
  );
  for (const row of due) yield* deleteRun(row['id'] as string);
  return due.length;
}

/** A run and its log (the response it stored is deleted apart, by reference counts). */
export function* deleteRun(runId: string): Work<void> {
  yield* exec('DELETE FROM run_events WHERE run_id = ?', runId);
  yield* exec('DELETE FROM runs WHERE id = ?', runId);
}
