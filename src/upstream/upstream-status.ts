// Whether vLLM can take requests yet. In `serve` mode the gateway listens before vLLM
// has loaded its model (orchestrators probe /health and /ready during the load); until
// vLLM is healthy, requests for it get 503 upstream_starting rather than a refused
// connection, and /ready says why it is not ready.
export class UpstreamStatus {
  #starting: boolean;

  constructor(starting: boolean) {
    this.#starting = starting;
  }

  get starting(): boolean {
    return this.#starting;
  }

  /** vLLM answered its /health: requests go to it from now on. */
  markReady(): void {
    this.#starting = false;
  }
}
