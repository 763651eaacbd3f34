// The resident-memory ceiling docs/operations.md ("Under abuse") states for a setting of
// MAX_CONNECTIONS and MAX_BODY_BYTES, with Node run as the image runs it
// (--max-semi-space-size=4, the compiled dist/). Derived from the abuse soak's own figures
// (bench/README.md): what the proxy holds with no connection open after serving for a while,
// what each open vendor connection adds at most, and the request bodies being read.
const MiB = 1024 * 1024;

/** A serving proxy with the default policy size and no client connection open, with room for
 *  a reload holding two compiled policies and GC slack. */
export const BASE_BYTES = 160 * MiB;
/** What one open vendor connection costs at most (socket, HTTP parser, TLS-free). */
export const PER_CONNECTION_BYTES = 24 * 1024;
/** A body being read is held as its chunks and then once more joined: twice its size. */
export const BODY_FACTOR = 2;

export function ceilingBytes(maxConnections: number, maxBodyBytes: number, bodiesReadAtOnce: number): number {
  return BASE_BYTES + maxConnections * PER_CONNECTION_BYTES + BODY_FACTOR * maxBodyBytes * bodiesReadAtOnce;
}
