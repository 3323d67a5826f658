// A reader of another process's run must not stop short when the run's last events and its
// end land between two of its reads (the soak found one that ended after event 1).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResponsesService } from '../responses/responses-service.ts';
import type { RunEventPage, RunState, Store } from '../store/store.ts';
import { BackgroundResponses } from './background-responses.ts';
import type { RunRegistry } from './run-registry.ts';
import type { RunSubscriber } from './run.ts';

const ID = 'resp_0123456789abcdef0123456789abcdef';

describe('following a run of another process', () => {
  it('reads the log once more when the run is seen finished right after an empty read', async () => {
    const log = [0, 1, 2, 3].map((seq) => ({ seq, data: `event ${seq}\n\n` }));
    let reads = 0;
    const run = (finished: boolean): RunState => ({
      id: ID,
      tenant: 't',
      createdAt: 0,
      status: finished ? 'completed' : 'in_progress',
      base: '{}',
      pending: '{}',
      nextSeq: 4,
      owner: 'elsewhere',
      cancelRequested: false,
      finished,
    });
    const store = {
      getRun: () => Promise.resolve(run(reads > 0)),
      // The first read comes before the last appends; by the next one they are there.
      readRunEvents: (_id: string, after: number): Promise<RunEventPage> => {
        reads += 1;
        return Promise.resolve({ events: reads === 1 ? [] : log.filter((event) => event.seq > after), more: false });
      },
    } as unknown as Store;
    const registry = { get: () => undefined, watch: () => () => undefined, notifies: false } as unknown as RunRegistry;
    const background = new BackgroundResponses(store, registry, {} as ResponsesService);
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const subscriber: RunSubscriber = {
        write: (events) => {
          received.push(...events);
          return true;
        },
        onceDrain: (listener) => listener(),
        end: (error) => (error === undefined ? resolve() : reject(error)),
      };
      void background.stream('t', ID, 1, subscriber);
    });
    assert.deepEqual(received, ['event 2\n\n', 'event 3\n\n']);
  });
});
