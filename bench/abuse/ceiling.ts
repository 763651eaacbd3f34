// The resident-memory ceiling docs/operations.md ("Under abuse") states for the settings
// MAX_CONNECTIONS and MAX_BUFFERED_BODY_BYTES, with Node run as the image runs it (the
// compiled dist/, the Node flags of package.json's start). The allowances come from the abuse soak's figures
// (bench/README.md, "Under abuse"), with room to spare:
const MiB = 1024 * 1024;

/** A proxy serving steady traffic with a small policy and no abusive connection: the soak's
 *  quiet phase measures 105-115 MiB; the rest is room for a reload holding two policies. */
export const BASE_BYTES = 128 * MiB;
/** What each open vendor connection adds at most, its share of garbage not yet collected
 *  included: the soak measures 49 KiB per abusive connection at the peak with Node's default
 *  young generation (26 KiB with --max-semi-space-size=4). */
export const PER_CONNECTION_BYTES = 64 * 1024;
/** A body is held as its chunks and, briefly, once more joined: twice the bytes it reserves. */
export const BODY_FACTOR = 2;

export function ceilingBytes(maxConnections: number, maxBufferedBodyBytes: number): number {
  return BASE_BYTES + maxConnections * PER_CONNECTION_BYTES + BODY_FACTOR * maxBufferedBodyBytes;
}
