// Per-request counts for the metrics, kept in plain numbers and handed to prom-client only when
// /metrics is scraped. prom-client's label children turn their label values into a string key
// on every inc() and observe() (lib/util.js hashObject) and validate them again: the three calls
// per request took 3 µs in a loop, against 0.08 µs here (a few Map lookups and increments).
// Under load the difference is below what bench/ab.ts resolves (docs/benchmarks.md).
import type { Counter, Metric } from 'prom-client';

interface Count {
  n: number;
}

/** Request counts by (client, decision, status), published through a prom-client Counter's
 *  collect(). */
export class RequestTally {
  readonly #byClient = new Map<string, Map<string, Map<number, Count>>>();

  count(client: string, decision: string, status: number): void {
    let byDecision = this.#byClient.get(client);
    if (!byDecision) this.#byClient.set(client, (byDecision = new Map()));
    let byStatus = byDecision.get(decision);
    if (!byStatus) byDecision.set(decision, (byStatus = new Map()));
    const cell = byStatus.get(status);
    if (cell) cell.n++;
    else byStatus.set(status, { n: 1 });
  }

  /** Sets `counter` to these counts: called from its collect(), when /metrics is scraped. */
  publish(counter: Counter<'client' | 'decision' | 'status'>): void {
    counter.reset();
    for (const [client, byDecision] of this.#byClient) {
      for (const [decision, byStatus] of byDecision) {
        for (const [status, { n }] of byStatus) counter.inc({ client, decision, status: String(status) }, n);
      }
    }
  }
}

/** One series as prom-client's registry reads it from get(). */
interface SeriesValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

interface Buckets {
  /** Observations per bucket, not cumulative; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram with one label, registered in a prom-client Registry as a metric of its own:
 * it answers `get()` with the values prom-client's Histogram would (cumulative `_bucket`
 * series with `le`, then `_sum` and `_count`), so the exposition is the same.
 */
export class HistogramTally {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #cells = new Map<string, Buckets>();
  readonly name: string;
  readonly help: string;
  readonly labelName: string;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelName: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.labelName = labelName;
    this.buckets = buckets;
  }

  observe(label: string, value: number): void {
    let cell = this.#cells.get(label);
    if (!cell) this.#cells.set(label, (cell = { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }));
    const bounds = this.buckets;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  reset(): void {
    this.#cells.clear();
  }

  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: SeriesValue[] } {
    const values: SeriesValue[] = [];
    for (const [label, cell] of this.#cells) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += cell.counts[i]!;
        values.push({ labels: { le: i < this.buckets.length ? this.buckets[i]! : '+Inf', [this.labelName]: label }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { [this.labelName]: label }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.labelName]: label }, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** What Registry.registerMetric() takes: it calls only get(), reset() and reads name and type. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
