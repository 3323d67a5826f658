import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compactionUpstreamOf, fromLatestCompaction } from './compaction.ts';
import { marksOf, noteAppended } from './history-marks.ts';
import { foldSystemMessages, isSystemMessage } from './system-messages.ts';

type Json = Record<string, unknown>;

const user = (text: string): string => JSON.stringify({ type: 'message', role: 'user', content: text });
const system = (text: string, role = 'system'): string => JSON.stringify({ type: 'message', role, content: text });
const summary = (text: string): string => compactionUpstreamOf(text, 'all');
// A tool's output is the client's JSON: it may hold objects that open like a message.
const nestedSystem = JSON.stringify({
  type: 'function_call_output',
  call_id: 'c',
  output: [{ type: 'input_text', text: 'x' }, { type: 'message', role: 'system', content: 'nested' }, JSON.parse(summary('nested'))],
});
const tricky = user('quotes \\" and "brackets" ] } [ { , and a backslash at the end \\');

function history(items: readonly string[]): Buffer {
  return Buffer.from(items.join(','));
}

function spansOf(bytes: Buffer): string[] {
  return marksOf(bytes).systemMessages.map((span) => bytes.toString('utf8', span.start, span.end));
}

/** The fold as it was before history-marks.ts (every history item parsed), to compare with. */
function parsedFold(instructions: unknown, items: readonly string[], newItems: readonly string[]): { history: Json[]; newItems: Json[]; instructions: string | undefined } {
  const leading: string[] = typeof instructions === 'string' && instructions.length > 0 ? [instructions] : [];
  let opening = true;
  const rewrite = (item: Json): Json | undefined => {
    if (!isSystemMessage(item)) {
      opening = false;
      return item;
    }
    if (opening) {
      const content = item['content'];
      leading.push(typeof content === 'string' ? content : '');
      return undefined;
    }
    return { type: 'message', role: 'user', content: item['content'] };
  };
  const keep = (list: readonly string[]): Json[] => list.map((item) => rewrite(JSON.parse(item) as Json)).filter((item) => item !== undefined);
  const keptHistory = keep(items);
  return { history: keptHistory, newItems: keep(newItems), instructions: leading.length > 0 ? leading.join('\n\n') : undefined };
}

function parsed(bytes: Buffer): Json[] {
  return bytes.length === 0 ? [] : (JSON.parse(`[${bytes.toString('utf8')}]`) as Json[]);
}

/** A small deterministic generator: the same histories at every run. */
function* randomHistories(count: number): Generator<string[]> {
  let state = 7;
  const next = (n: number): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const kinds = [() => user(`u${next(100)}`), () => system(`s${next(100)}`), () => system(`d${next(100)}`, 'developer'), () => nestedSystem, () => tricky];
  for (let i = 0; i < count; i++) {
    const items: string[] = [];
    const length = next(8);
    for (let j = 0; j < length; j++) items.push((kinds[next(kinds.length)] as () => string)());
    yield items;
  }
}

describe('history marks', () => {
  it('find the system and developer messages of a history, and no object inside an item', () => {
    const items = [system('a'), tricky, nestedSystem, user('b'), system('c', 'developer'), tricky];
    assert.deepEqual(spansOf(history(items)), [system('a'), system('c', 'developer')]);
    assert.deepEqual(spansOf(history([nestedSystem, tricky])), []);
  });

  it('find the latest server-side summary at the top level only', () => {
    const items = [user('a'), summary('first'), user('b'), summary('second'), nestedSystem, user('c')];
    const bytes = history(items);
    assert.equal(marksOf(bytes).latestSummaryAt, bytes.indexOf(summary('second')));
    assert.equal(marksOf(history([user('a'), nestedSystem])).latestSummaryAt, -1);
  });

  it('carried over to a longer history search only the items appended', () => {
    const base = history([system('a'), user('b')]);
    marksOf(base);
    const extended = Buffer.concat([base, Buffer.from(`,${[user('c'), system('d', 'developer')].join(',')}`)]);
    // The base's system message overwritten, in the copy only, by a user message as long:
    // a search of the whole history would no longer find it; carried over, it is there.
    const overwrite = user('aaa');
    assert.equal(overwrite.length, system('a').length);
    extended.write(overwrite, 0);
    assert.deepEqual(spansOf(Buffer.from(extended)).length, 1);
    noteAppended(base, extended);
    assert.deepEqual(
      marksOf(extended).systemMessages.map((span) => span.start),
      [0, base.length + 1 + user('c').length + 1],
    );
  });

  it('carried over give what a search of the whole history gives', () => {
    for (const items of randomHistories(200)) {
      const split = Math.floor(items.length / 2);
      const base = history(items.slice(0, split));
      marksOf(base);
      const tail = items.slice(split).join(',');
      const extended = base.length === 0 ? Buffer.from(tail) : Buffer.concat([base, Buffer.from(tail.length === 0 ? '' : `,${tail}`)]);
      noteAppended(base, extended);
      assert.deepEqual(marksOf(extended), marksOf(Buffer.from(extended)), items.join(','));
    }
  });
});

describe('system messages folded with marks', () => {
  it('give what parsing every item gives, on histories of every mix', () => {
    let histories = 0;
    for (const items of randomHistories(300)) {
      for (const newItems of [[], [user('n')], [system('m'), user('n')], [nestedSystem]]) {
        const folded = foldSystemMessages('inst', history(items), newItems);
        const expected = parsedFold('inst', items, newItems);
        assert.deepEqual(parsed(folded.history), expected.history, items.join(','));
        assert.deepEqual(folded.newItems.map((item) => JSON.parse(item) as Json), expected.newItems);
        assert.equal(folded.instructions ?? 'inst', expected.instructions ?? 'inst');
        histories++;
      }
    }
    assert.equal(histories, 1200);
  });

  it('leave the other items as the bytes they were', () => {
    const odd = '{"type":"function_call_output","call_id":"c","output":"\\u00e9 1.0"}';
    const folded = foldSystemMessages(undefined, history([system('a'), odd, system('b')]), []);
    assert.equal(folded.history.toString(), `${odd},${user('b')}`);
    assert.equal(folded.instructions, 'a');
  });
});

describe('latest compaction with marks', () => {
  it('keeps the system messages before the summary in front of it, and nothing else', () => {
    const items = [system('a'), user('b'), nestedSystem, system('c', 'developer'), summary('s'), user('d'), system('e')];
    const current = fromLatestCompaction(history(items), []);
    assert.deepEqual(current.history.toString(), [system('a'), system('c', 'developer'), summary('s'), user('d'), system('e')].join(','));
    // The marks carried over to the new history are those a search finds.
    assert.deepEqual(marksOf(current.history), marksOf(Buffer.from(current.history)));
  });

  it('takes no object inside an item for a summary', () => {
    const bytes = history([user('a'), nestedSystem, user('b')]);
    assert.equal(fromLatestCompaction(bytes, []).history, bytes);
  });
});
