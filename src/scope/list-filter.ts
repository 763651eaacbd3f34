// List answers for a scoped client (GET /projects, /groups, /groups/:id/projects, ...): read
// whole (bounded, uncompressed: the request went without Accept-Encoding), the out-of-scope
// items removed, and sent with a fresh length. Pagination headers stay truthful: GitLab's
// X-Page, X-Per-Page, X-Next-Page, X-Prev-Page and Link describe pages of GitLab's list,
// which still hold (a page may just show fewer items, or none); X-Total and X-Total-Pages
// count items the client may not see, so they are dropped (GitLab itself omits them for
// large lists: lib/gitlab/pagination/offset_header_builder.rb), and so is the ETag of the
// unfiltered body.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { RequestContext } from '../context.ts';
import { refusal, type Refusal } from '../errors.ts';

/** A page of 100 projects is well under 1 MiB; an answer far larger is refused. */
export const LIST_MAX_BYTES = 8 * 1024 * 1024;

const DROPPED = ['x-total', 'x-total-pages', 'etag', 'content-length', 'content-encoding'];

export function respondFilteredList(
  proxyRes: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  ctx: RequestContext,
  keep: (item: unknown) => boolean,
  refuse: (refusal: Refusal) => void,
): void {
  for (const name of DROPPED) if (name !== 'content-length' && name !== 'content-encoding') delete headers[name];
  const head = res.req?.method === 'HEAD';
  if (status !== 200 || head) {
    // An error answer is not a list, and a HEAD answer has no body: sent as GitLab wrote them,
    // minus the totals.
    if (head) delete headers['content-length'];
    proxyRes.on('data', (chunk: Buffer) => (ctx.bytesOut += chunk.length));
    res.writeHead(status, headers);
    proxyRes.pipe(res);
    return;
  }
  let failed = false;
  const fail = (): void => {
    if (failed) return;
    failed = true;
    if (!res.headersSent) refuse(refusal('upstream-list-unfilterable'));
    if (res.writableFinished) proxyRes.destroy();
    else res.once('finish', () => proxyRes.destroy());
  };
  const encoding = String(proxyRes.headers['content-encoding'] ?? 'identity').toLowerCase();
  const type = String(proxyRes.headers['content-type'] ?? '').toLowerCase();
  if (encoding !== 'identity' || !/^application\/json\b/.test(type)) return fail();
  const chunks: Buffer[] = [];
  let size = 0;
  proxyRes.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > LIST_MAX_BYTES) fail();
    else if (!failed) chunks.push(chunk);
  });
  proxyRes.on('end', () => {
    if (failed) return;
    let items: unknown;
    try {
      items = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch {
      return fail();
    }
    if (!Array.isArray(items)) return fail();
    const body = Buffer.from(JSON.stringify(items.filter(keep)));
    ctx.bytesOut += body.length;
    for (const name of DROPPED) delete headers[name];
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  });
}
