import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HistogramTally, RequestTally } from './tally.ts';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];
const OBSERVED: [string, number][] = [['a', 0.001], ['a', 0.005], ['b', 0.05], ['a', 3], ['b', 99], ['a', 0.01], ['c', 1]];

describe('HistogramTally', () => {
  it("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
    const theirs = new Registry();
    const histogram = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['client'], buckets: BUCKETS, registers: [theirs] });
    const ours = new Registry();
    const tally = new HistogramTally('x_seconds', 'h', 'client', BUCKETS);
    ours.registerMetric(tally.asMetric());
    for (const [client, v] of OBSERVED) {
      histogram.labels(client).observe(v);
      tally.observe(client, v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('x_seconds_bucket{le="0.01",client="a"} 3');
  });

  it('starts again from zero on reset', async () => {
    const registry = new Registry();
    const tally = new HistogramTally('y_seconds', 'h', 'client', BUCKETS);
    registry.registerMetric(tally.asMetric());
    tally.observe('a', 1);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('client="a"');
  });
});

describe('RequestTally', () => {
  it("counts by (client, decision, status) as prom-client's Counter does", async () => {
    const theirs = new Registry();
    const counter = new Counter({ name: 'r_total', help: 'h', labelNames: ['client', 'decision', 'status'], registers: [theirs] });
    const tally = new RequestTally();
    const ours = new Registry();
    new Counter({
      name: 'r_total', help: 'h', labelNames: ['client', 'decision', 'status'], registers: [ours],
      collect() {
        tally.publish(this);
      },
    });
    const seen: [string, string, number][] = [['a', 'allow', 200], ['a', 'allow', 200], ['a', 'deny', 403], ['b', 'allow', 200], ['a', 'allow', 404]];
    for (const [client, decision, status] of seen) {
      counter.labels(client, decision, String(status)).inc();
      tally.count(client, decision, status);
    }
    // The same series; the order of series is not part of the format.
    const lines = async (r: Registry): Promise<string[]> => (await r.metrics()).split('\n').sort();
    expect(await lines(ours)).toEqual(await lines(theirs));
    expect(await ours.metrics()).toContain('r_total{client="a",decision="allow",status="200"} 2');
  });
});
