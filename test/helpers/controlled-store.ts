// A Store that wraps a real one and can be told to be slow or to fail: for testing
// read-your-writes (a slow commit must still come before the terminal event, an event
// before its log append) and the gateway's answer to a database that fails mid-request.
import { storeFailure } from '../../src/store/store-error.ts';
import type { Store } from '../../src/store/store.ts';

export interface StoreControls {
  /** Every save waits this long before it commits. */
  saveDelayMs: number;
  /** Every operation fails as a lost database would. */
  failing: boolean;
  /** While set, a background run's log appends wait for it. */
  appendGate: Promise<void> | undefined;
}

export function controlledStore(inner: Store): { store: Store; controls: StoreControls } {
  const controls: StoreControls = { saveDelayMs: 0, failing: false, appendGate: undefined };
  const handler: ProxyHandler<Store> = {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'close' || property === 'migrate') return (value as () => unknown).bind(target);
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
