// A Store that wraps a real one and can be told to be slow or to fail: for testing
// read-your-writes (a slow commit must still come before the terminal event, an event
// before its log append) and the gateway's answer to a database that fails mid-request.
import { storeFailure } from '../../src/store/store-error.ts';
import type { Store, UnconfirmedContext } from '../../src/store/store.ts';

export interface StoreControls {
  /** Every save waits this long before it commits. */
  saveDelayMs: number;
  /** Every operation fails as a lost database would. */
  failing: boolean;
  /** While set, a background run's log appends wait for it. */
  appendGate: Promise<void> | undefined;
  /** While set, a kept context's confirmation waits for it (and rejects if it rejects). */
  confirmGate: Promise<void> | undefined;
  /** Kept contexts handed over before their confirmation (keptResponseContext) so far. */
  confirmations: number;
}

export function controlledStore(inner: Store): { store: Store; controls: StoreControls } {
  const controls: StoreControls = { saveDelayMs: 0, failing: false, appendGate: undefined, confirmGate: undefined, confirmations: 0 };
  const handler: ProxyHandler<Store> = {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'close' || property === 'migrate') return (value as () => unknown).bind(target);
      // Not a promise: a kept context is handed over at once, its confirmation to come.
      if (property === 'keptResponseContext') return keptContextControlled(target, controls);
      return async (...args: unknown[]) => {
        if (controls.failing) throw storeFailure(new Error('connection lost (simulated)'));
        if (property === 'saveResponse' && controls.saveDelayMs > 0) {
          await new Promise((resolve) => setTimeout(resolve, controls.saveDelayMs));
        }
        if (property === 'appendRunEvents' && controls.appendGate !== undefined) await controls.appendGate;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  };
  return { store: new Proxy(inner, handler), controls };
}

function keptContextControlled(target: Store, controls: StoreControls): Store['keptResponseContext'] {
  return (tenant, responseId, now, maxItems) => {
    // A database that fails is not asked: the read that follows fails.
    if (controls.failing) return undefined;
    const kept = target.keptResponseContext?.(tenant, responseId, now, maxItems);
    if (kept !== undefined) controls.confirmations += 1;
    const gate = controls.confirmGate;
    if (kept === undefined || gate === undefined) return kept;
    // Read once the gate opens: not an unhandled rejection meanwhile.
    kept.confirmed.catch(() => undefined);
    const held: UnconfirmedContext = { history: kept.history, confirmed: gate.then(() => kept.confirmed) };
    return held;
  };
}
