// Zoom's flow from its own article, in a real browser (Debian's chromium, driven by
// playwright-core): the approver signs in at GitLab, approves on the consent page, and the
// browser lands on Zoom's redirect URI with a code. That navigation is intercepted by
// playwright routing and never reaches the network; nothing but loopback is let through.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auditLine, startOAuthProxy, ZOOM_REDIRECT, type OAuthProxy } from './support.ts';

let p: OAuthProxy;
let context: BrowserContext;
const profile = mkdtempSync(join(tmpdir(), 'gsp-chromium-'));

beforeAll(async () => {
  p = await startOAuthProxy();
  // A fresh profile directory is the --user-data-dir (playwright passes it for a persistent context).
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 390, height: 844 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await context?.close();
  await p?.close();
  rmSync(profile, { recursive: true, force: true });
});

it('signs in, approves on a phone-sized consent page and lands on Zoom\'s redirect URI with a code', async () => {
  const page = await context.newPage();
  const landed = new Promise<string>((resolve) => {
    void context.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith(ZOOM_REDIRECT)) {
        resolve(url);
        await route.fulfill({ status: 200, contentType: 'text/plain', body: 'Zoom (intercepted)' });
      } else if (url.startsWith('http://127.0.0.1:')) {
        await route.continue();
      } else {
        await route.abort();
      }
    });
  });
  const state = 'zoom-state-1';
  await page.goto(`${p.url}/oauth/authorize?${new URLSearchParams({ client_id: p.clientId, redirect_uri: ZOOM_REDIRECT, response_type: 'code', state, scope: 'api read_user' })}`);
  // GitLab's sign-in (the stand-in's page).
  await page.fill('#username', 'alice');
  await page.click('#authorize');
  // The proxy's consent page.
  await page.waitForSelector('button.approve');
  expect(await page.textContent('h1')).toContain('zoom');
  expect(await page.textContent('main')).toContain('applications.zoom.us');
  // Nothing wider than the phone's screen (no sideways scrolling).
  expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
  await page.click('button.approve');
  const url = new URL(await landed);
  expect(url.searchParams.get('state')).toBe(state);
  const code = url.searchParams.get('code')!;
  expect(code).toMatch(/^gspc_/);

  // Zoom's server exchanges the code; the token then works for exactly the Zoom policy.
  const res = await fetch(`${p.url}/oauth/token`, {
    method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: ZOOM_REDIRECT, client_id: p.clientId, client_secret: p.clientSecret }),
  });
  const { access_token: accessToken } = await res.json() as { access_token: string };
  const auth = { authorization: `Bearer ${accessToken}` };
  p.h.standin.reset();
  expect((await fetch(`${p.url}/api/v4/projects/3/hooks`, { headers: auth })).status).toBe(200);
  expect((await fetch(`${p.url}/api/v4/projects/3/repository/tree`, { headers: auth })).status).toBe(403);
  expect(p.h.standin.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v4/projects/3/hooks']);
  await auditLine(p, (l) => l.reason === 'oauth-approved' && l.oauth?.approver === 'alice');
});
