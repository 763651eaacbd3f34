// A strict reader of multipart/form-data field names. Rack's multipart parser and any other
// parser may disagree on folded headers, RFC 2231 names, preambles and odd boundaries; we
// accept only the plain form every HTTP client library produces and refuse the rest.
import { malformed } from '../errors.ts';

const NAME = /^[A-Za-z0-9_.\-[\]]+$/;

export function boundaryOf(contentType: string): string {
  // Rack: %r|\Amultipart/.*boundary=\"?([^\";,]+)\"?|ni (rack multipart/parser.rb)
  const m = /;\s*boundary=(?:"([^";,]{1,70})"|([^";,\s]{1,70}))\s*(?:;|$)/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw malformed('multipart-boundary', 'multipart body without a usable boundary');
  return boundary;
}

/** Field names of every part, in order. */
export function multipartFieldNames(body: Buffer, contentType: string): string[] {
  const boundary = boundaryOf(contentType);
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  if (!text.startsWith(delimiter + '\r\n')) throw malformed('multipart-framing', 'multipart body must start with its boundary');
  const close = `\r\n${delimiter}--`;
  const end = text.lastIndexOf(close);
  if (end === -1 || !/^(?:\r\n)?$/.test(text.slice(end + close.length))) {
    throw malformed('multipart-framing', 'multipart body must end with its closing boundary');
  }
  const parts = text.slice(delimiter.length + 2, end).split(`\r\n${delimiter}\r\n`);
  return parts.map(partName);
}

function partName(part: string): string {
  const headerEnd = part.indexOf('\r\n\r\n');
  if (headerEnd === -1) throw malformed('multipart-framing', 'multipart part without headers');
  let name: string | undefined;
  for (const line of part.slice(0, headerEnd).split('\r\n')) {
    const m = /^([A-Za-z-]+):[ \t]*(.*)$/.exec(line);
    if (!m) throw malformed('multipart-header', 'malformed multipart part header');
    const header = m[1]!.toLowerCase();
    if (header === 'content-type') continue;
    if (header !== 'content-disposition' || name !== undefined) throw malformed('multipart-header', 'unexpected multipart part header');
    const d = /^form-data; name="([^"]*)"(?:; filename="[^"\\]*")?$/.exec(m[2]!);
    if (!d || !NAME.test(d[1]!)) throw malformed('multipart-header', 'unexpected multipart content-disposition');
    name = d[1]!;
  }
  if (name === undefined) throw malformed('multipart-header', 'multipart part without a name');
  return name;
}
