// The requests the single-case tools send (bench:ab, bench:profile, bench:syscalls,
// bench:threads, bench:allocations), by name. stream-1 and stream-1000 beside stream-100
// part a stream's cost per request from its cost per event.
export interface RequestCase {
  readonly body: object;
  readonly headers: Record<string, string>;
  /** The gateway translates for a chat-only simulator (--upstream-api chat). */
  readonly chat?: boolean;
}

const JSON_1K_INPUT = 'lorem ipsum '.repeat(80);
const streamOf = (deltas: number, fields: object = { store: false }): RequestCase => ({
  body: { model: 'm', input: 'x', stream: true, ...fields },
  headers: { 'x-sim': `deltas=${deltas}` },
});

export const REQUEST_CASES: Readonly<Record<string, RequestCase>> = {
  'json-1k': { body: { model: 'm', input: JSON_1K_INPUT, store: false }, headers: {} },
  'json-1k-store': { body: { model: 'm', input: JSON_1K_INPUT }, headers: {} },
  'stream-1': streamOf(1),
  'stream-100': streamOf(100),
  'stream-1000': streamOf(1000),
  'stream-100-store': streamOf(100, {}),
  'stream-100-background': streamOf(100, { background: true }),
  'chat-stream-100': { ...streamOf(100), chat: true },
};

/** The case of that name, or an error listing the names. */
export function requestCase(name: string): RequestCase {
  const found = REQUEST_CASES[name];
  if (found === undefined) throw new Error(`--case: one of ${Object.keys(REQUEST_CASES).join(', ')}`);
  return found;
}
