import { describe, expect, it } from 'vitest';
import { consentPage, pageHeaders } from './pages.ts';

describe('consent page', () => {
  it('escapes everything it shows and carries no script', () => {
    const html = consentPage({
      vendor: 'zoom', description: '<script>alert(1)</script>', redirectHost: 'a"b', scope: 'api',
      sections: [{ heading: 'Can read', items: ['GET /projects/<id>'] }], approver: 'alice', csrf: 'tok"en', action: '/oauth/consent', nonce: 'n1',
    });
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('GET /projects/&lt;id&gt;');
    expect(html).toContain('value="tok&quot;en"');
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
  });

  it('is sent with a CSP that allows no script and forms only to the proxy and the vendor', () => {
    const csp = pageHeaders('n1', ['https://applications.zoom.us'])['content-security-policy'];
    expect(csp).toBe("default-src 'none'; style-src 'nonce-n1'; img-src 'none'; base-uri 'none'; form-action 'self' https://applications.zoom.us; frame-ancestors 'none'");
  });
});
