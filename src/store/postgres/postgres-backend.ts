// PostgreSQL under the store core: for several gateway processes or machines sharing
// state. A pg Pool sized by --db-pool-size; every write is one transaction on one
// connection.
//
// A database that fails must never take the process down, nor hold its requests:
// - every client gets an 'error' listener for its whole life: pg emits 'error' on a
//   client whose connection dies while it is checked out (a restart, pg_terminate_backend,
//   a reset), and an EventEmitter without a listener throws it out of the process;
// - every query has a deadline (--db-query-timeout), enforced by the client (a server
//   that stops answering) and by the server (statement_timeout), and TCP keepalive finds
//   dead peers;
// - a connection that failed or timed out is never reused: it is destroyed, which frees
//   its pool slot at once and makes the server roll back what it had begun.
import pg from 'pg';
import type { Migration } from '../schema.ts';
import type { NewItem } from '../store.ts';
import type { ItemFields, SqlBackend, SqlDialect } from '../sql/backend.ts';
import { applyMigrations } from '../sql/migrate.ts';
import { exec, isBatch, runAsync, type Query, type QueryResult, type Row, type SqlValue, type Work } from '../sql/work.ts';
import { storeFailure } from '../store-error.ts';
import { RUNS_CHANNEL } from '../sql-runs.ts';

/** Any fixed number: all gateways agree on it to serialise their migrations. */
const MIGRATION_LOCK_KEY = 7_257_311_902;
/** Migrations may rewrite big tables, and wait for another process's migrations. */
const MIGRATION_TIMEOUT_MS = 3_600_000;
const IDLE_TIMEOUT_MS = 30_000;
const KEEPALIVE_DELAY_MS = 10_000;
/** A listening connection that failed is opened again after this long. */
const LISTEN_RETRY_MS = 1_000;
/** How long closing the listening connection may wait for the server. */
const LISTEN_END_MS = 500;

export interface PostgresOptions {
  readonly connectionString: string;
  readonly poolSize: number;
  /** Deadline of each query, and of a new connection. */
  readonly queryTimeoutMs: number;
}

/** Numbers (seqs) go as PostgreSQL's array literal, joined at once: what pg would send,
 * but pg builds it element by element (0.4–0.9 ms for a 4,000-item context's seqs, against
 * 0.05–0.09 joined, measured in isolation). Text is left to pg, which escapes each element. */
function list(values: readonly number[] | readonly string[]): string | readonly string[] {
  return typeof values[0] === 'number' ? `{${values.join(',')}}` : (values as readonly string[]);
}

const ITEM_FIELDS = 'type, payload, upstream, schema_version, owner_response_id, holders, created_at, tenant';
const ITEM_VALUES = 't.type, t.payload, t.upstream, ?::int, ?::text, ?::int, ?::bigint, ?::text';
const ITEM_COLUMNS = 'id text, type text, payload text, upstream text';
/** One statement for all the items: one round trip. */
const INSERT_ITEMS = `INSERT INTO items (id, ${ITEM_FIELDS}) SELECT t.id, ${ITEM_VALUES}
  FROM json_to_recordset(?::json) AS t(${ITEM_COLUMNS}) RETURNING seq, id`;
/** The same with the seqs given (reserved), each beside its item. */
const INSERT_ITEMS_WITH_SEQS = `INSERT INTO items (seq, id, ${ITEM_FIELDS}) SELECT t.seq, t.id, ${ITEM_VALUES}
  FROM json_to_recordset(?::json) AS t(seq bigint, ${ITEM_COLUMNS})`;

/**
 * The items' columns as one JSON array of objects, bound as one parameter: V8's
 * JSON.stringify escapes every text in one pass, where pg escapes each element of a text
 * array with two regular expressions (its escapeElement: 18 µs of a 2-item turn at c=1 in
 * bench:gap, more the longer the texts).
 */
function itemsJson(items: readonly NewItem[], seqs?: readonly number[]): string {
  return JSON.stringify(
    items.map(({ id, type, payload, upstream }, i) => (seqs === undefined ? { id, type, payload, upstream } : { seq: seqs[i], id, type, payload, upstream })),
  );
}

function itemParams(items: readonly NewItem[], fields: ItemFields, seqs?: readonly number[]): SqlValue[] {
  return [fields.schemaVersion, fields.owner, fields.holders, fields.createdAt, fields.tenant, itemsJson(items, seqs)];
}

/** The texts oneStatement made, by their main statement's text, then their writes'. Both
 * are the store's constants, so this stays as small as the store's set of statements. */
const withWrites = new Map<string, Map<string, string>>();

/** See SqlDialect.oneStatement. The writes become the first WITH clauses of `main`; the
 * placeholders stay in the order of the text, so their parameters go first. */
function oneStatement(writes: readonly Query[], main: Query): Query {
  if (writes.length === 0) return main;
  const writesKey = writes.length === 1 ? (writes[0] as Query).sql : writes.map((write) => write.sql).join('\0');
  let byWrites = withWrites.get(main.sql);
  if (byWrites === undefined) withWrites.set(main.sql, (byWrites = new Map<string, string>()));
  let sql = byWrites.get(writesKey);
  if (sql === undefined) {
    const clauses = writes.map((write, i) => `write_${i} AS (${write.sql})`).join(', ');
    sql = main.sql.startsWith('WITH ') ? `WITH ${clauses}, ${main.sql.slice('WITH '.length)}` : `WITH ${clauses} ${main.sql}`;
    byWrites.set(writesKey, sql);
  }
  const params: SqlValue[] = [];
  for (const write of writes) params.push(...write.params);
  params.push(...main.params);
  return { sql, params };
}

export const POSTGRES_DIALECT: SqlDialect = {
  name: 'postgres',
  orderedList: (alias, type) =>
    `(SELECT u.value, u.ord - 1 AS key FROM unnest(?::${type}[]) WITH ORDINALITY AS u(value, ord)) AS ${alias}`,
  // LIMIT keeps the lateral subquery from being made a join: one index probe a seq, always.
  seqsFound: '(SELECT count(*) FROM unnest(?::bigint[]) AS u(seq) CROSS JOIN LATERAL (SELECT 1 FROM items i WHERE i.seq = u.seq LIMIT 1) AS found)',
  list,
  joinText: (expression, orderBy) => `string_agg(${expression}, ',' ORDER BY ${orderBy})`,
  forUpdate: ' FOR UPDATE',
  forUpdateSkipLocked: ' FOR UPDATE SKIP LOCKED',
  notify: `SELECT pg_notify('${RUNS_CHANNEL}', ?)`,
  bytesType: 'BYTEA',
  insertItems: (items, fields): Query[] => [{ sql: INSERT_ITEMS, params: itemParams(items, fields) }],
  itemSeqs: {
    // items.seq is a BIGSERIAL: its sequence is items_seq_seq, in the schema the items are.
    reserve: "SELECT string_agg(CAST(nextval('items_seq_seq') AS TEXT), ',') AS seqs FROM generate_series(1, CAST(? AS INTEGER))",
    insertItems: (items, fields, seqs): Query[] => [{ sql: INSERT_ITEMS_WITH_SEQS, params: itemParams(items, fields, seqs) }],
  },
  oneStatement,
};

/** A query as pg sends it: `?` placeholders numbered as PostgreSQL wants them ($1, $2, ...)
 * and, for a statement with parameters, a name, so that each connection parses and plans
 * it once and then only binds it (the chain read spent 0.8 ms of the server's time parsing
 * and planning at every continuation: bench/README.md, "What was changed"). */
interface Prepared {
  readonly text: string;
  readonly name: string | undefined;
}

/** The store's statements are constants: far fewer than this. A text beyond it (none is
 * known) goes unnamed rather than growing every connection's statement cache. */
const MAX_NAMED = 256;
const prepared = new Map<string, Prepared>();
/** Exported for bench:pg-store's other driver, which sends the same texts. */
export function toPostgres(sql: string): Prepared {
  let statement = prepared.get(sql);
  if (statement === undefined) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    statement = { text, name: n > 0 && prepared.size < MAX_NAMED ? `rg_${prepared.size}` : undefined };
    prepared.set(sql, statement);
  }
  return statement;
}

function ignore(): void {}

export class PostgresBackend implements SqlBackend {
  readonly dialect = POSTGRES_DIALECT;
  readonly #pool: pg.Pool;
  readonly #queryTimeoutMs: number;
  readonly #connectionString: string;
  /** See againWhileStale. */
  readonly #staleAttempts: number;

  constructor(options: PostgresOptions) {
    this.#queryTimeoutMs = options.queryTimeoutMs;
    this.#staleAttempts = options.poolSize + 1;
    this.#connectionString = options.connectionString;
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize,
      connectionTimeoutMillis: options.queryTimeoutMs,
      idleTimeoutMillis: IDLE_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      query_timeout: options.queryTimeoutMs,
      // The server gives up too, so a statement the client stopped waiting for does not
      // keep running (and holding locks) after its connection is gone.
      statement_timeout: options.queryTimeoutMs,
      // A transaction's queries that do not wait on each other's results go out together
      // (#transaction); a lone query is sent as before.
      pipeline: true,
    });
    // Idle clients: the pool drops one whose connection died and connects again when needed.
    this.#pool.on('error', ignore);
    // Checked-out clients: see the header. Failures surface through the pending query.
    this.#pool.on('connect', (client) => client.on('error', ignore));
  }

  read<T>(work: () => Work<T>): Promise<T> {
    const attempt = (): Promise<T> => {
      let first = true;
      return runAsync(work(), async (query) => {
        const { text, name } = toPostgres(query.sql);
        const result = await this.#pool.query({ text, name, values: query.params as unknown[] }).catch((error: unknown) => {
          throw first && isDeadConnection(error) ? new StaleConnection(error) : error;
        });
        first = false;
        return this.#result(result);
      });
    };
    // A read is safe to run again; only a connection found dead at its first query is
    // retried (an idle one the server ended, which the pool had not noticed yet).
    return againWhileStale(attempt, this.#staleAttempts);
  }

  write<T>(work: () => Work<T>): Promise<T> {
    // Nothing was done when BEGIN met a dead connection: the transaction runs again.
    return againWhileStale(() => this.#transaction(work, this.#queryTimeoutMs), this.#staleAttempts);
  }

  /** Runs work in one transaction on one connection checked out for it (see pipelined). */
  async #transaction<T>(work: () => Work<T>, timeoutMs: number): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw storeFailure(error);
    }
    const send = async (query: Query): Promise<QueryResult> => {
      const { text, name } = toPostgres(query.sql);
      // pg reads query_timeout from a query's config too (lib/client.js), though its types omit it.
      const config = { text, name, values: query.params as unknown[], query_timeout: timeoutMs };
      return this.#result(await client.query(config as pg.QueryConfig));
    };
    try {
      const value = await pipelined(work(), send);
      client.release();
      return value;
    } catch (error) {
      // Not reused (see the header): destroying it rolls back the transaction.
      destroy(client, error);
      throw error instanceof StaleConnection ? error : storeFailure(error);
    }
  }

  #result(result: pg.QueryResult): QueryResult {
    return { rows: result.rows as Row[], changes: result.rowCount ?? 0 };
  }

  migrate(migrations: readonly Migration[]): Promise<void> {
    return this.#transaction(this.#migrateWork.bind(this, migrations), MIGRATION_TIMEOUT_MS);
  }

  *#migrateWork(migrations: readonly Migration[]): Work<void> {
    yield* exec(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    yield* exec(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    yield* applyMigrations(migrations, this.dialect);
  }

  /**
   * LISTEN on a connection of its own (a pooled one would be handed to others). A lost
   * connection is opened again after LISTEN_RETRY_MS; what was notified meanwhile is lost,
   * which is why listeners also poll, slowly.
   */
  async listen(channel: string, listener: (payload: string) => void): Promise<() => Promise<void>> {
    let client: pg.Client | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    const open = async (): Promise<void> => {
      const next = new pg.Client({
        connectionString: this.#connectionString,
        connectionTimeoutMillis: this.#queryTimeoutMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      });
      const reopen = (): void => {
        next.removeAllListeners('notification');
        next.end().catch(ignore);
        if (client === next) client = undefined;
        if (stopped || retry !== undefined) return;
        retry = setTimeout(() => {
          retry = undefined;
          open().catch(ignore);
        }, LISTEN_RETRY_MS);
        retry.unref();
      };
      next.on('error', reopen);
      next.on('end', reopen);
      next.on('notification', (message) => {
        if (message.channel === channel && message.payload !== undefined) listener(message.payload);
      });
      try {
        await next.connect();
        await next.query(`LISTEN ${channel}`);
        client = next;
        if (stopped) await next.end();
      } catch {
        reopen();
      }
    };
    await open();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const listening = client;
      if (listening === undefined) return;
      // A server that stopped answering never acknowledges the end: its socket is cut.
      const cut = setTimeout(() => socketOf(listening)?.destroy(), LISTEN_END_MS);
      await listening.end().catch(ignore);
      clearTimeout(cut);
    };
  }

  /** PostgreSQL keeps deleted rows until VACUUM reclaims them (docs/reliability.md). */
  eraseResidue(): Promise<void> {
    return Promise.resolve();
  }

  /** Waits for connections in use at most `graceMs`; the process's exit closes any still stuck. */
  async close(graceMs = 1_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#pool.end(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}

const BEGIN: Query = { sql: 'BEGIN', params: [] };
const COMMIT: Query = { sql: 'COMMIT', params: [] };

/**
 * Runs work in one transaction over `send` (one connection's), pipelined: each batch's
 * queries go out together, BEGIN with the first of them and COMMIT with the batch marked
 * last, so a write costs a round trip per batch and none for BEGIN and COMMIT. Work that is
 * one statement (its first step a last batch of one query) is sent alone: PostgreSQL runs a
 * statement outside BEGIN as a transaction of its own, so BEGIN and COMMIT would only cost
 * two more statements. A failure is thrown as it came (see settle); the caller rolls back.
 * Exported for bench:pg-store's other driver, which runs the store's writes the same way.
 */
export async function pipelined<T>(generator: Work<T>, send: (query: Query) => Promise<QueryResult>): Promise<T> {
  let begun = false;
  /** The work's last batch went (with COMMIT, when anything had begun). */
  let lastSent = false;
  let step = generator.next();
  while (step.done !== true) {
    if (lastSent) throw new Error('store work asked for a query after its last batch');
    const queries = isBatch(step.value) ? step.value.queries : [step.value];
    const last = isBatch(step.value) && step.value.last;
    const sent: Promise<QueryResult>[] = [];
    /** The transaction's first statement goes now (BEGIN, or the lone statement). */
    const opening: boolean = !begun && queries.length > 0;
    const beginning: boolean = opening && !(last && queries.length === 1);
    if (beginning) sent.push(send(BEGIN));
    begun ||= beginning;
    for (const query of queries) sent.push(send(query));
    if (last && begun) sent.push(send(COMMIT));
    lastSent = last;
    const results = await settle(sent, opening);
    const own = results.slice(beginning ? 1 : 0, (beginning ? 1 : 0) + queries.length);
    step = generator.next(isBatch(step.value) ? own : (own[0] as QueryResult));
  }
  if (begun && !lastSent) await send(COMMIT);
  return step.value;
}

/**
 * The results of pipelined queries, in order; or the first failure among them. Each is
 * awaited, so none is left rejected unhandled. A COMMIT after a failed statement answers
 * ROLLBACK without an error: the statement's own failure is the one thrown. When the
 * transaction's first statement (`opening`: BEGIN, or a lone statement) met a dead
 * connection, the transaction may run again (StaleConnection): a server that ended the
 * connection (57P01–57P03) had not begun it, and pg settles a statement only on the
 * ReadyForQuery that follows its commit, so a connection cut before that answer leaves
 * the statement uncommitted, but for the instant between the commit and that answer, when
 * a second run fails on the first one's rows rather than doubling them.
 */
async function settle(sent: readonly Promise<QueryResult>[], opening: boolean): Promise<QueryResult[]> {
  const settled = await Promise.allSettled(sent);
  const results: QueryResult[] = [];
  for (const [i, outcome] of settled.entries()) {
    if (outcome.status === 'fulfilled') results.push(outcome.value);
    else throw opening && i === 0 && isDeadConnection(outcome.reason) ? new StaleConnection(outcome.reason) : outcome.reason;
  }
  return results;
}

/**
 * Returns a client to the pool as broken: the pool forgets it at once (its slot is free)
 * and closes it, cutting the socket when a query is still outstanding (pg 8.23 does, so a
 * stalled server's silence cannot hold the close).
 */
function destroy(client: pg.PoolClient, error: unknown): void {
  client.release(error instanceof Error ? error : new Error(String(error)));
}

/** The socket under a pg Client (not in its types): to cut a connection whose server is silent. */
function socketOf(client: pg.Client): { destroy(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
}

/**
 * Runs `attempt` again while it meets a pooled connection found dead, at most `attempts`
 * times. Each such attempt drops the dead connection it met, and a pool holds at most its
 * size of them, so the pool's size plus one attempts reach a connection opened afresh. It
 * matters when the server ended every connection at once (a restart, a failover) and a
 * request came before the pool had read their ends: once more was not enough then.
 */
async function againWhileStale<T>(attempt: () => Promise<T>, attempts: number): Promise<T> {
  for (let left = attempts; ; left--) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof StaleConnection)) throw storeFailure(error);
      if (left <= 1) throw storeFailure(error.cause);
    }
  }
}

/** A pooled connection found dead at its first query: what it was asked was not done. */
class StaleConnection extends Error {
  constructor(cause: unknown) {
    super('the connection was found closed', { cause });
  }
}

/**
 * The server ended the connection (pg_terminate_backend, a restart: 57P01-57P03) or it was
 * cut: not a query's own failure, nor a timeout (a silent server is not retried).
 */
function isDeadConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNRESET' || code === 'EPIPE') return true;
  const message = error instanceof Error ? error.message : '';
  // Not "Connection terminated due to connection timeout": a silent server is not retried.
  return message === 'Connection terminated unexpectedly';
}
