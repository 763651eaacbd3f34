// MAX_BUFFERED_BODY_BYTES: how many bytes of request bodies all requests together may hold.
// Bodies are read whole before they are checked and forwarded (body.ts), so without this the
// memory they take is MAX_BODY_BYTES times the requests reading one at once, which
// MAX_CONCURRENT_PER_CLIENT bounds per client only. A body's bytes count from when they are
// reserved (its Content-Length up front, or each chunk of a chunked body) until its response
// is over (the body is held while it is read and while it is forwarded), or until it is
// dropped, refused while being read.
export class BodyBudget {
  #held = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` if they fit; false (nothing taken) if they do not. */
  reserve(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#held -= bytes;
  }
}
