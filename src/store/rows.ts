// Rows as both backends read them (the same columns in SQLite and PostgreSQL), turned
// into what the Store interface returns.
import type { Row } from './sql/work.ts';
import type { ConversationRecord, StoredItem } from './store.ts';

export function toItem(row: Row): StoredItem {
  return {
    // PostgreSQL returns BIGINT as a string, SQLite as a number.
    seq: Number(row['seq']),
    id: row['id'] as string,
    type: row['type'] as string,
    payload: row['payload'] as string,
    upstream: row['upstream'] as string,
  };
}

export function toConversation(row: Row): ConversationRecord {
  return { id: row['id'] as string, createdAt: Number(row['created_at']), metadata: row['metadata'] as string };
}
