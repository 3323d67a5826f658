// UpstreamRelay.holdUntil: vLLM's answer to a request sent before its kept context was
// confirmed waits, whole and in order, until the confirmation; nothing of it reaches the
// client when the context is not confirmed, and vLLM's request is aborted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import { pino } from 'pino';
import { GatewayMetrics } from '../observability/metrics.ts';
import { UpstreamRelay, type RelaySink } from './relay.ts';
import { UsageScanner } from './usage-scanner.ts';

/** What the sink was given, in order. */
class RecordingSink implements RelaySink {
  readonly calls: string[] = [];
  head(status: number): void {
    this.calls.push(`head ${status}`);
  }
  write(parts: readonly (string | Buffer)[]): boolean {
    for (const part of parts) this.calls.push(`write ${part.toString()}`);
    return true;
  }
  onceDrain(listener: () => void): void {
    listener();
  }
  end(): void {
    this.calls.push('end');
  }
  destroy(): void {
    this.calls.push('destroy');
  }
}

/** undici's controller as a handler sees it: whether it is paused, and its abort. */
class FakeController implements Dispatcher.DispatchController {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  rawHeaders: string[] = ['content-type', 'text/event-stream'];
  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

function relayTo(sink: RelaySink, usage?: UsageScanner): { relay: UpstreamRelay; errors: string[]; retries: { count: number } } {
  const errors: string[] = [];
  const retries = { count: 0 };
  const relay = new UpstreamRelay(
    {
      sink,
      extraHeaders: [],
      route: '/v1/responses',
      startedAt: performance.now(),
      metrics: new GatewayMetrics(),
      log: () => pino({ level: 'silent' }),
      maxEventBytes: 1 << 20,
      record: { upstreamStatus: undefined, streamed: false, bytesOut: 0, errorCode: undefined },
      usage,
      sendError: (error) => errors.push(error.code),
      retryAfterReset: () => {
        retries.count += 1;
        return true;
      },
    },
    undefined,
  );
  return { relay, errors, retries };
}

/** A confirmation the test settles. */
function confirmation(): { promise: Promise<boolean>; settle(confirmed: boolean): void; fail(error: Error): void } {
  let settle!: (confirmed: boolean) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<boolean>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  return { promise, settle, fail };
}

/** vLLM answers a whole stream: two events and its end. */
function answer(relay: UpstreamRelay, controller: FakeController): void {
  relay.onRequestStart(controller);
  relay.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
  relay.onResponseData(controller, Buffer.from('data: one\n\n'));
  relay.onResponseData(controller, Buffer.from('data: two\n\n'));
  relay.onResponseEnd();
}

/** Lets the confirmation's callbacks and the relay's end-of-tick flush run. */
async function settled(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('a relay held until its kept context is confirmed', () => {
  it('gives the sink nothing while held, then the whole answer in order, and resumes reading', async () => {
    const sink = new RecordingSink();
    const { relay } = relayTo(sink);
    const confirmed = confirmation();
    relay.holdUntil(confirmed.promise);
    const controller = new FakeController();
    answer(relay, controller);
    await settled();
    assert.deepEqual(sink.calls, [], 'nothing reaches the client before the confirmation');
    assert.equal(controller.paused, true, 'vLLM is not read past what came');
    confirmed.settle(true);
    await settled();
    assert.deepEqual(sink.calls, ['head 200', 'write data: one\n\n', 'write data: two\n\n', 'end']);
    assert.equal(controller.paused, false, 'reading resumes');
    assert.equal(controller.aborted, false);
  });

  it("meters the usage of an answer that came while held", async () => {
    const usage = new UsageScanner();
    const { relay } = relayTo(new RecordingSink(), usage);
    const confirmed = confirmation();
    relay.holdUntil(confirmed.promise);
    const controller = new FakeController();
    controller.rawHeaders = ['content-type', 'application/json'];
    relay.onRequestStart(controller);
    relay.onResponseStart(controller, 200, { 'content-type': 'application/json' });
    relay.onResponseData(controller, Buffer.from('{"model":"m","usage":{"input_tokens":3,'));
    relay.onResponseData(controller, Buffer.from('"output_tokens":4,"total_tokens":7}}'));
    relay.onResponseEnd();
    confirmed.settle(true);
    await settled();
    assert.equal(usage.usage?.input, 3);
    assert.equal(usage.usage?.output, 4);
  });

  it('passes an answer that comes after the confirmation straight through', async () => {
    const sink = new RecordingSink();
    const { relay } = relayTo(sink);
    relay.holdUntil(Promise.resolve(true));
    await settled();
    const controller = new FakeController();
    relay.onRequestStart(controller);
    assert.equal(controller.paused, false, 'not paused once confirmed');
    relay.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    assert.deepEqual(sink.calls, ['head 200'], 'the head goes at once');
  });

  for (const [outcome, settle] of [
    ['not confirmed', (c: ReturnType<typeof confirmation>) => c.settle(false)],
    ['a failed check', (c: ReturnType<typeof confirmation>) => c.fail(new Error('connection lost'))],
  ] as const) {
    it(`drops the answer and aborts vLLM's request on ${outcome}`, async () => {
      const sink = new RecordingSink();
      const { relay, errors } = relayTo(sink);
      const confirmed = confirmation();
      relay.holdUntil(confirmed.promise);
      const controller = new FakeController();
      answer(relay, controller);
      settle(confirmed);
      await settled();
      assert.equal(controller.aborted, true, "vLLM's request is aborted");
      // What undici reports of the abort is not told either.
      relay.onResponseError(controller, controller.reason ?? new Error('aborted'));
      await settled();
      assert.deepEqual(sink.calls, [], 'nothing reaches the client');
      assert.deepEqual(errors, [], 'no error is sent: the caller answers');
    });
  }

  it('aborts a request not yet on a connection when the confirmation fails first', async () => {
    const { relay } = relayTo(new RecordingSink());
    relay.holdUntil(Promise.resolve(false));
    await settled();
    const controller = new FakeController();
    relay.onRequestStart(controller);
    assert.equal(controller.aborted, true);
  });

  it('answers a reset that came after a held head with an error, and does not send the request again', async () => {
    const sink = new RecordingSink();
    const { relay, errors, retries } = relayTo(sink);
    const confirmed = confirmation();
    relay.holdUntil(confirmed.promise);
    const controller = new FakeController();
    relay.onRequestStart(controller);
    relay.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    relay.onResponseError(controller, Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    confirmed.settle(true);
    await settled();
    // vLLM answered (it may have generated): not sent again. Nothing reached the client,
    // so the failure is an error answer, as one before vLLM's head is.
    assert.equal(retries.count, 0, 'not sent again');
    assert.deepEqual(sink.calls, []);
    assert.equal(errors.length, 1);
  });
});
