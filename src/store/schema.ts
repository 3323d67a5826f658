// Schema versions shared in spirit by both backends; each backend has its own DDL.
// A migration is never edited once released: add a new version instead.

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sqlite: readonly string[];
  readonly postgres: readonly string[];
}

/** Item payloads carry this version; a later change of the item JSON shape bumps it. */
export const ITEM_SCHEMA_VERSION = 1;

/** What migration 5's trigger does for each removal it counts (see counters()). */
const COUNT_REMOVAL = "UPDATE store_counters SET value = value + 1 WHERE name = 'item_removals'";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'items, responses with checkpoints, conversations',
    sqlite: [
      `CREATE TABLE items (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        upstream TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        owner_response_id TEXT,
        holders INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      'CREATE INDEX items_owner ON items (owner_response_id)',
      `CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL,
        body TEXT NOT NULL,
        previous_response_id TEXT,
        conversation_id TEXT,
        checkpoint BLOB NOT NULL,
        input_count INTEGER NOT NULL,
        refs INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER
      )`,
      'CREATE INDEX responses_expiry ON responses (expires_at) WHERE expires_at IS NOT NULL AND deleted = 0',
      `CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        next_position INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE TABLE conversation_items (
        conversation_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        item_seq INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, position)
      )`,
      'CREATE INDEX conversation_items_item ON conversation_items (item_seq)',
    ],
    postgres: [
      `CREATE TABLE items (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        upstream TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        owner_response_id TEXT,
        holders INTEGER NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      'CREATE INDEX items_owner ON items (owner_response_id)',
      `CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL,
        body TEXT NOT NULL,
        previous_response_id TEXT,
        conversation_id TEXT,
        checkpoint BYTEA NOT NULL,
        input_count INTEGER NOT NULL,
        refs INTEGER NOT NULL,
        deleted BOOLEAN NOT NULL DEFAULT FALSE,
        expires_at BIGINT
      )`,
      'CREATE INDEX responses_expiry ON responses (expires_at) WHERE expires_at IS NOT NULL AND NOT deleted',
      `CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        metadata TEXT NOT NULL,
        next_position INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE TABLE conversation_items (
        conversation_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        item_seq BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, position)
      )`,
      'CREATE INDEX conversation_items_item ON conversation_items (item_seq)',
    ],
  },
  {
    version: 2,
    description: 'tenants, checkpoints relative to another response, retention by creation time',
    sqlite: secondMigration(),
    postgres: secondMigration(),
  },
  {
    version: 3,
    description: 'runs (background responses) and their event logs',
    sqlite: thirdMigration('INTEGER'),
    postgres: thirdMigration('BIGINT'),
  },
  {
    version: 4,
    description: 'the model server replica that answered each response (affinity across gateways)',
    sqlite: ['ALTER TABLE responses ADD COLUMN replica TEXT'],
    postgres: ['ALTER TABLE responses ADD COLUMN replica TEXT'],
  },
  {
    version: 5,
    description: 'a count of item removals, against which a context kept in memory is confirmed',
    sqlite: [
      ...counters('INTEGER'),
      `CREATE TRIGGER items_removed_count AFTER DELETE ON items FOR EACH ROW WHEN OLD.owner_response_id IS NULL
      BEGIN ${COUNT_REMOVAL}; END`,
    ],
    postgres: [
      ...counters('BIGINT'),
      `CREATE FUNCTION count_item_removals() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM removed WHERE owner_response_id IS NULL) THEN ${COUNT_REMOVAL}; END IF;
        RETURN NULL;
      END $$`,
      // EXECUTE PROCEDURE: the spelling PostgreSQL 10 takes too.
      `CREATE TRIGGER items_removed_count AFTER DELETE ON items REFERENCING OLD TABLE AS removed
      FOR EACH STATEMENT EXECUTE PROCEDURE count_item_removals()`,
    ],
  },
];

/**
 * `item_removals` counts the deletions of items that a live response's context may hold: a
 * process that kept a context while the count read n knows it whole while the count still
 * reads n (sql-store.ts, loadResponseContext). Those are the items no response owns (a
 * conversation held them alone: a store: false turn's); a response's own items go only with
 * it, once nothing holds it, so no live context names them. Counted by a trigger, so that
 * whatever deletes them (another gateway, an older build, a hand on the database) counts.
 */
function counters(bigint: string): string[] {
  return [
    `CREATE TABLE store_counters (
      name TEXT PRIMARY KEY,
      value ${bigint} NOT NULL
    )`,
    "INSERT INTO store_counters (name, value) VALUES ('item_removals', 0)",
  ];
}

/** A run's row lives from its start until its event log expires (--background-event-ttl);
 * its response, once finished, is stored in `responses` like any other. */
function thirdMigration(bigint: string): string[] {
  return [
    `CREATE TABLE runs (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      created_at ${bigint} NOT NULL,
      status TEXT NOT NULL,
      base TEXT NOT NULL,
      pending TEXT NOT NULL,
      next_seq INTEGER NOT NULL DEFAULT 0,
      owner TEXT NOT NULL,
      heartbeat_at ${bigint} NOT NULL,
      cancel_requested INTEGER NOT NULL DEFAULT 0,
      finished_at ${bigint}
    )`,
    'CREATE INDEX runs_unfinished ON runs (heartbeat_at) WHERE finished_at IS NULL',
    'CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL',
    // One row per batch of events (what one append wrote), not per event: a stream of 100
    // events is a few rows. `data` is the events as clients get them, one after another.
    `CREATE TABLE run_events (
      run_id TEXT NOT NULL,
      first_seq INTEGER NOT NULL,
      last_seq INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (run_id, first_seq)
    )`,
  ];
}

/** The same DDL in both dialects: ADD and DROP COLUMN, and partial indexes. */
function secondMigration(): string[] {
  return [
    // Every row belongs to a tenant; rows stored before tenants belong to the default one.
    "ALTER TABLE items ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE responses ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE conversations ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    // A checkpoint may hold only the seqs it adds to the checkpoint of checkpoint_base
    // (checkpoint_depth hops from a whole one).
    'ALTER TABLE responses ADD COLUMN checkpoint_base TEXT',
    'ALTER TABLE responses ADD COLUMN checkpoint_depth INTEGER NOT NULL DEFAULT 0',
    // The response this one holds a reference on (its previous response, or its base).
    'ALTER TABLE responses ADD COLUMN holds_response_id TEXT',
    'UPDATE responses SET holds_response_id = previous_response_id',
    // A conversation's last stored turn: the next turn's checkpoint can build on it.
    'ALTER TABLE conversations ADD COLUMN last_response_id TEXT',
    // Retention is counted from created_at whatever --store-ttl was when a row was stored.
    'DROP INDEX responses_expiry',
    'ALTER TABLE responses DROP COLUMN expires_at',
    'CREATE INDEX responses_retention ON responses (created_at) WHERE deleted = FALSE',
  ];
}

/** Reorders a list page: `seqs` in the order asked, cut by a cursor position and the limit. */
export function pageWindow<T>(
  ordered: readonly T[],
  startAfter: number,
  endBefore: number,
  limit: number,
): { window: T[]; hasMore: boolean } {
  const from = startAfter + 1;
  const to = Math.min(endBefore, ordered.length);
  const window = ordered.slice(from, Math.min(to, from + limit));
  return { window, hasMore: from + limit < to };
}
