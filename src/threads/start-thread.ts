// Starting a worker thread on one of the gateway's own modules. Compiled (dist/), the
// module is loaded as it is. From the TypeScript sources (tests, the demo, the dev tools,
// run under tsx) it needs tsx's loader, which a worker thread does not inherit from
// --import: a one-line bootstrap registers it first.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The URL of the module `name` beside `from` (an import.meta.url), with `from`'s extension. */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(from))}`, from);
}

export function startThread(module: URL, options: WorkerOptions = {}): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(module.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}

/**
 * Lowers the scheduling priority of the calling thread (Linux: a thread is a task with
 * a nice value of its own), so that bulk work on it gives way to the event loop when the
 * cores are busy. Elsewhere, or without permission, it changes nothing.
 */
export function yieldToEventLoop(niceness: number): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, niceness);
  } catch {
    // Not Linux, or not allowed: the thread keeps the process's priority.
  }
}
