import { describe, expect, it } from 'vitest';
import { hostDiffers, publicUrlWatch } from './public-url-check.ts';

describe('PUBLIC_URL check', () => {
  const pub = new URL('https://gitlab-proxy.example.com/base');
  it('compares hosts the way URLs do', () => {
    expect(hostDiffers(pub, 'gitlab-proxy.example.com')).toBe(false);
    expect(hostDiffers(pub, 'GITLAB-PROXY.example.com:443')).toBe(false);
    expect(hostDiffers(pub, 'gitlab-proxy.example.com:8443')).toBe(true);
    expect(hostDiffers(pub, '10.0.0.5:8080')).toBe(true);
    expect(hostDiffers(pub, undefined)).toBe(false);
    expect(hostDiffers(pub, 'bad host/')).toBe(false);
  });
  it('warns once', () => {
    const warnings: string[] = [];
    const check = publicUrlWatch(pub, (host, publicHost) => warnings.push(`${host} ${publicHost}`));
    check('gitlab-proxy.example.com');
    check('127.0.0.1:8080');
    check('other.example');
    expect(warnings).toEqual(['127.0.0.1:8080 gitlab-proxy.example.com']);
    expect(() => publicUrlWatch(undefined, () => {})('x')).not.toThrow();
  });
});
