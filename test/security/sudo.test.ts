// Impersonation with sudo (reference item 2): GitLab reads params[:sudo] (query, form, JSON
// or multipart body) or the Sudo header (lib/api/helpers.rb sudo_identifier). None of them
// may reach GitLab, however spelled, and a multipart body may not hide one from the proxy.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Harness } from '../support/harness.ts';
import { bearer, expectRefused, forwarded, json, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
`;
const NOTES = '/api/v4/projects/1/merge_requests/1/notes';
const FORM: [string, string] = ['Content-Type', 'application/x-www-form-urlencoded'];

let h: Harness;
let jwt: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
  },
);

const boundary = (): string => `----b${randomBytes(8).toString('hex')}`;
const part = (b: string, disposition: string, value: string, extra = ''): string =>
  `--${b}\r\n${extra}Content-Disposition: ${disposition}\r\n\r\n${value}\r\n`;
const multipart = (b: string, ...parts: string[]): string => `${parts.join('')}--${b}--\r\n`;
const postMultipart = (contentType: string, body: string) =>
  send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', contentType]], body });

describe('sudo in the query', () => {
  it.each(['sudo=root', 'SUDO=1', 'Sudo=1', 'sudo[]=1', 'sudo[id]=1', 'su%64o=root', '%73udo=root', 'sudo', 'per_page=5&sudo=2'])(
    'refuses ?%s with 403', async (query) => {
      const sent = await send(h.url, { path: `/api/v4/projects/1?${query}`, headers: [bearer(jwt)] });
      await expectRefused(h, sent, 'sudo', 403);
    });

  it('refuses a bracket-prefixed [sudo], which Rack reads as sudo', async () => {
    const sent = await send(h.url, { path: '/api/v4/projects/1?%5Bsudo%5D=root', headers: [bearer(jwt)] });
    await expectRefused(h, sent, 'bad-parameter-name', 400);
  });
});

describe('sudo in a header', () => {
  it.each(['Sudo', 'sudo', 'SUDO'])('refuses a %s header with 403', async (name) => {
    const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), [name, 'root']] });
    await expectRefused(h, sent, 'sudo', 403);
  });

  it.each(['HTTP_SUDO', 'Http_Sudo'])('refuses the env-style spelling %s', async (name) => {
    const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), [name, 'root']] });
    await expectRefused(h, sent, 'underscore-header', 400);
  });
});

describe('sudo in a JSON or form body', () => {
  it.each([{ sudo: 'root' }, { Sudo: 1 }, { body: 'x', sudo: 1 }, { '[sudo]': 'root' }, { 'sudo[x]': 'root' }, { ']sudo': 1 }])(
    'refuses the JSON body %j with 403', async (value) => {
      const { headers, body } = json(value);
      const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ...headers], body });
      await expectRefused(h, sent, 'sudo', 403);
    });

  it('refuses sudo spelled with a JSON escape', async () => {
    const { headers, body } = json('{"body":"x","su\\u0064o":"root"}');
    await expectRefused(h, await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ...headers], body }), 'sudo', 403);
  });

  it.each(['body=x&sudo=root', 'sudo=1&body=x', 'su%64o=root&body=x', 'sudo[]=1&body=x', 'SUDO=1&body=x'])(
    'refuses the form body %s with 403', async (body) => {
      const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), FORM], body });
      await expectRefused(h, sent, 'sudo', 403);
    });

  it.each(['body=x&%5Bsudo%5D=root', 'body=x&%5Dsudo=root'])('refuses the form body %s (a bracketed name)', async (body) => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), FORM], body });
    await expectRefused(h, sent, 'bad-parameter-name', 400);
  });
});

describe('sudo in a multipart body', () => {
  it('refuses a plain sudo field with 403, and forwards the same body without it', async () => {
    const b = boundary();
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, multipart(b, part(b, 'form-data; name="body"', 'x'), part(b, 'form-data; name="sudo"', 'root'))), 'sudo', 403);
    const ok = multipart(b, part(b, 'form-data; name="body"', 'x'));
    const rec = await forwarded(h, await postMultipart(`multipart/form-data; boundary=${b}`, ok));
    expect(rec.body.toString('latin1')).toBe(ok);
  });

  it.each(['[sudo]', ']sudo', '[]sudo'])('refuses the field name %s, which Rack files under sudo', async (name) => {
    const b = boundary();
    const sent = await postMultipart(`multipart/form-data; boundary=${b}`, multipart(b, part(b, `form-data; name="${name}"`, 'root')));
    await expectRefused(h, sent, 'bad-parameter-name', 400);
  });

  it('refuses a filename holding "; name=sudo" (Rack takes the last name= on the line)', async () => {
    const b = boundary();
    const sent = await postMultipart(`multipart/form-data; boundary=${b}`, multipart(b, part(b, 'form-data; name="body"; filename="a; name=sudo"', 'root')));
    await expectRefused(h, sent, 'multipart-header', 400);
  });

  it('refuses a part Content-Type that carries another Content-Disposition', async () => {
    const b = boundary();
    const body = multipart(b, part(b, 'form-data; name="body"', 'root', 'Content-Type: text/plain; x="Content-Disposition: form-data; name=sudo"\r\n'));
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, body), 'multipart-header', 400);
  });

  it('refuses an empty name, which Rack replaces with the filename', async () => {
    const b = boundary();
    const sent = await postMultipart(`multipart/form-data; boundary=${b}`, multipart(b, part(b, 'form-data; name=""; filename="sudo"', 'root')));
    await expectRefused(h, sent, 'multipart-header', 400);
  });

  it('refuses a second boundary= in the Content-Type (Rack uses the last one)', async () => {
    const outer = boundary();
    const inner = boundary();
    // The proxy's reading: one field "body". Rack's reading with the inner boundary: "sudo".
    const hidden = `\r\n--${inner}\r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--${inner}--`;
    const body = multipart(outer, part(outer, 'form-data; name="body"', hidden));
    const sent = await postMultipart(`multipart/form-data; boundary=${outer}; x=boundary=${inner}`, body);
    await expectRefused(h, sent, 'content-type', 415);
    const quoted = await postMultipart(`multipart/form-data; boundary="${outer}"; charset=boundary=${inner}`, body);
    await expectRefused(h, quoted, 'content-type', 415);
  });

  it('refuses a boundary inside a part that is not preceded by CRLF (Rack ends the part there)', async () => {
    const b = boundary();
    const body = multipart(b, part(b, 'form-data; name="body"', `x--${b}\r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot`));
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, body), 'multipart-framing', 400);
  });

  it('refuses a boundary line with trailing spaces (Rack strips the line)', async () => {
    const b = boundary();
    const body = `--${b}\r\nContent-Disposition: form-data; name="body"\r\n\r\nx\r\n--${b}  \r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--${b}--\r\n`;
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, body), 'multipart-framing', 400);
  });

  it('refuses a preamble before the first boundary and an epilogue after the last', async () => {
    const b = boundary();
    const fields = multipart(b, part(b, 'form-data; name="body"', 'x'));
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, `preamble\r\n${fields}`), 'multipart-framing', 400);
    await expectRefused(h, await postMultipart(`multipart/form-data; boundary=${b}`, `${fields}epilogue`), 'multipart-framing', 400);
  });
});
