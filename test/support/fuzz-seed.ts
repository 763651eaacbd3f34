// fast-check's seed for the property tests: fixed under `npm test`, so a run passes or fails
// the same way every time; random under `npm run fuzz` (FUZZ_RUNS set), where fast-check
// prints the seed of a failure; FUZZ_SEED replays one.
export function fuzzSeed(): { seed?: number } {
  if (process.env.FUZZ_SEED) return { seed: Number(process.env.FUZZ_SEED) };
  return process.env.FUZZ_RUNS ? {} : { seed: 20261202 };
}
