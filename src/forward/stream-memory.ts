// Keeps a streamed download from growing the process by tens of MiB of dead buffers.
//
// Every 64 KiB read from GitLab's socket arrives in a fresh Buffer, and Node's HTTP parser
// hands the body on in a second, copied one. Both die as soon as the chunk is written to the
// client, but their memory lives outside V8's heap and is only freed when V8 collects the
// small objects that own it. V8 starts a collection when its own heap fills, which a stream
// hardly touches, or when such outside memory passes a soft limit of 64 MB since the last full
// collection (V8's kExternalAllocationSoftLimit). Streaming 256 MiB therefore grew a bare Node
// proxy by 85-90 MiB (bench/README.md, section 2).
//
// A young-generation collection frees them: the buffers are young when they die. One is
// asked for after every STREAM_GC_BYTES of response body, counted across all requests; it takes
// about a millisecond and costs nothing to requests that stream nothing.
import { collect } from '../ops/gc.ts';

export const STREAM_GC_BYTES = 2 * 1024 * 1024;

let sinceCollect = 0;

/** False when V8's collector could not be obtained: streaming then works, but unbounded by this. */
export const streamCollectorAvailable = collect !== null;

/** Counts `bytes` of a streamed body; collects the young generation every STREAM_GC_BYTES. */
export function countStreamed(bytes: number): void {
  sinceCollect += bytes;
  if (sinceCollect < STREAM_GC_BYTES || collect === null) return;
  sinceCollect = 0;
  collect({ type: 'minor' });
}
