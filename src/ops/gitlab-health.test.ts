import { describe, expect, it } from 'vitest';
import { GitLabHealth } from './gitlab-health.ts';

describe('GitLabHealth', () => {
  it('judges from the last exchange, and probes only when there was none for staleMs', async () => {
    let now = 0;
    let probes = 0;
    let probeAnswer = true;
    const health = new GitLabHealth(async () => {
      probes++;
      return probeAnswer;
    }, { staleMs: 1000, now: () => now });
    expect(await health.up()).toBe(true); // nothing known yet: probed
    expect(probes).toBe(1);
    health.failed('refused');
    expect(await health.up()).toBe(false);
    health.failed('reset'); // a cut body does not say GitLab is down
    health.answered();
    expect(await health.up()).toBe(true);
    expect(probes).toBe(1);
    now = 1001;
    probeAnswer = false;
    expect(await health.up()).toBe(false); // stale: probed again
    expect(probes).toBe(2);
  });
});
