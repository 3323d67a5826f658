// Reads POST /v1/responses bodies. A small body (nearly all of them) is parsed on the event
// loop: it takes microseconds. A large one goes to a parser thread (parse-thread.ts), so
// that parsing megabytes of JSON never stalls the requests and streams in flight; the
// threads start on the first large body, and there are at most two.
import type { Worker } from 'node:worker_threads';
import { siblingModule, startThread } from '../threads/start-thread.ts';
import { GatewayError, type ErrorCode } from '../errors.ts';
import { parseCreateResponseRequest, type CreateResponseRequest, type RequestLimits } from './create-request.ts';
import type { ParseJob, ParseReply } from './parse-thread.ts';
import { BoxedMap } from '../collections/boxed-map.ts';

/** Bodies from this size on are parsed on a thread (a few milliseconds of JSON.parse). */
export const THREAD_PARSE_FROM_BYTES = 256 * 1024;
const THREADS = 1;
/** A thread's heap: a 10 MiB body of tiny items parses into about 100 MB of objects. */
const THREAD_HEAP_MB = 512;

/** The thread's file, beside this one (.ts under tsx, .js once compiled). */
const THREAD_MODULE = siblingModule(import.meta.url, 'parse-thread');

interface Pending {
  readonly resolve: (reply: ParseReply) => void;
  readonly reject: (error: unknown) => void;
}

class ParserThread {
  readonly #worker: Worker;
  // Not a Map: see BoxedMap (each pending parse holds its request's continuation).
  readonly #pending = new BoxedMap<number, Pending>();

  constructor(onExit: (thread: ParserThread) => void) {
    this.#worker = startThread(THREAD_MODULE, { resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } });
    this.#worker.unref();
    this.#worker.on('message', (reply: ParseReply) => {
      this.#pending.get(reply.id)?.resolve(reply);
      this.#pending.delete(reply.id);
    });
    // A thread that dies (out of memory on a body that parses into too much) fails its
    // jobs; the pool starts another for the next body.
    const fail = (error: unknown): void => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', () => {
      fail(new Error('the parser thread exited'));
      onExit(this);
    });
  }

  get load(): number {
    return this.#pending.size;
  }

  run(job: ParseJob): Promise<ParseReply> {
    return new Promise((resolve, reject) => {
      this.#pending.set(job.id, { resolve, reject });
      this.#worker.postMessage(job);
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

export class RequestParser {
  readonly #limits: RequestLimits;
  readonly #threads: ParserThread[] = [];
  #nextId = 0;

  constructor(limits: RequestLimits) {
    this.#limits = limits;
  }

  async parse(rawBody: Buffer): Promise<CreateResponseRequest> {
    if (rawBody.length < THREAD_PARSE_FROM_BYTES) return parseCreateResponseRequest(rawBody, this.#limits);
    return this.#parseOnThread(rawBody);
  }

  async #parseOnThread(rawBody: Buffer): Promise<CreateResponseRequest> {
    const thread = this.#leastBusyThread();
    let reply: ParseReply;
    try {
      // A copy travels to the thread (the body stays here, for vLLM): a memcpy, not a parse.
      reply = await thread.run({ id: this.#nextId++, body: rawBody, limits: this.#limits });
    } catch (error) {
      throw new GatewayError('request_too_large', 'The request body is too large for the gateway to read.', { cause: error });
    }
    if (!reply.ok) throw new GatewayError(reply.error.code as ErrorCode, reply.error.message, { param: reply.error.param });
    const { planned, ...fields } = reply.parsed;
    return { rawBody, ...fields, ...(planned === undefined ? {} : { planned }) };
  }

  #leastBusyThread(): ParserThread {
    if (this.#threads.length < THREADS) {
      const thread = new ParserThread((gone) => {
        const index = this.#threads.indexOf(gone);
        if (index !== -1) this.#threads.splice(index, 1);
      });
      this.#threads.push(thread);
      return thread;
    }
    return this.#threads.reduce((best, thread) => (thread.load < best.load ? thread : best));
  }

  async close(): Promise<void> {
    await Promise.all(this.#threads.splice(0).map((thread) => thread.terminate()));
  }
}
