import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { pacedTimeouts } from './abuse.ts';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sockets = (n: number): Socket[] => Array.from({ length: n }, () => ({}) as Socket);

describe('pacedTimeouts', () => {
  it('answers a wave of timed-out connections a batch per turn of the event loop, each once', async () => {
    const handled: Socket[] = [];
    const report = pacedTimeouts((s) => handled.push(s), 4);
    const wave = sockets(10);
    for (const s of wave) report(s);
    // Node reports a connection again on its next check while it is still open.
    report(wave[0]!);
    expect(handled).toHaveLength(0);
    await turn();
    expect(handled).toEqual(wave.slice(0, 4));
    await turn();
    expect(handled).toEqual(wave.slice(0, 8));
    await turn();
    expect(handled).toEqual(wave);
    report(wave[9]!);
    await turn();
    // Reported again after it was answered (still closing): answered again; clientTimedOut
    // itself writes nothing twice for one socket.
    expect(handled).toHaveLength(11);
  });
});
