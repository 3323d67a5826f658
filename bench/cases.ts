// The requests the single-case tools send (bench:ab, bench:profile, bench:syscalls,
// bench:threads, bench:allocations), by name. stream-1 and stream-1000 beside stream-100
// part a stream's cost per request from its cost per event.
export interface RequestCase {
  readonly body: object;
  readonly headers: Record<string, string>;
  /** The gateway translates for a chat-only simulator (--upstream-api chat). */
  readonly chat?: boolean;
  /** The request continues a stored response holding these input items, made on each
   * gateway measured before its rounds (bodyFor). */
  readonly continues?: readonly object[];
}

const JSON_1K_INPUT = 'lorem ipsum '.repeat(80);
/** `bytes` of lorem ipsum: the text of a large input. */
export const filler = (bytes: number): string => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27)).slice(0, bytes);
const streamOf = (deltas: number, fields: object = { store: false }): RequestCase => ({
  body: { model: 'm', input: 'x', stream: true, ...fields },
  headers: { 'x-sim': `deltas=${deltas}` },
});

/** A history of `count` items opened by a developer message (as a coding agent's first turn
 * is), or not: what planning a continuation searches and folds (responses/history-marks.ts). */
function historyOf(count: number, developer: boolean): object[] {
  const items: object[] = developer ? [{ type: 'message', role: 'developer', content: 'You are a careful coding agent. '.repeat(8) }] : [];
  while (items.length < count) {
    const turn = items.length;
    items.push({ type: 'message', role: turn % 2 === 0 ? 'user' : 'assistant', content: `turn ${turn}: ${'lorem ipsum dolor sit amet '.repeat(3)}` });
  }
  return items;
}

// The continuations say store: false: each reads the one base's context (kept after the
// first) and plans, and writes nothing, so rounds do not contend on the base's row. One
// that stores (continue-100-store: the read, then the write a stored turn makes) is for
// c=1: at c=32 its turns would queue on the base's row, which each one updates.
const continuing = (count: number, developer: boolean, store = false): RequestCase => ({
  body: { model: 'm', input: 'and now?', store },
  headers: {},
  continues: historyOf(count, developer),
});

export const REQUEST_CASES: Readonly<Record<string, RequestCase>> = {
  'json-1k': { body: { model: 'm', input: JSON_1K_INPUT, store: false }, headers: {} },
  'json-1k-store': { body: { model: 'm', input: JSON_1K_INPUT }, headers: {} },
  'json-100k': { body: { model: 'm', input: filler(100 * 1024 - 60), store: false }, headers: {} },
  'stream-1': streamOf(1),
  'stream-100': streamOf(100),
  'stream-1000': streamOf(1000),
  'stream-100-store': streamOf(100, {}),
  'stream-100-background': streamOf(100, { background: true }),
  'chat-stream-100': { ...streamOf(100), chat: true },
  'continue-500': continuing(500, false),
  'continue-500-developer': continuing(500, true),
  'continue-100-store': continuing(100, false, true),
};

/** The case of that name, or an error listing the names. */
export function requestCase(name: string): RequestCase {
  const found = REQUEST_CASES[name];
  if (found === undefined) throw new Error(`--case: one of ${Object.keys(REQUEST_CASES).join(', ')}`);
  return found;
}

/** The body to send to this gateway: a continuation case's base is stored there first. */
export async function bodyFor(job: RequestCase, gatewayUrl: string): Promise<string> {
  if (job.continues === undefined) return JSON.stringify(job.body);
  const res = await fetch(`${gatewayUrl}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', input: job.continues }),
  });
  const base = (await res.json()) as { id?: unknown };
  if (res.status !== 200 || typeof base.id !== 'string') throw new Error(`storing the base to continue: ${res.status}`);
  return JSON.stringify({ ...job.body, previous_response_id: base.id });
}
