// A strict reader of multipart/form-data field names. Rack's multipart parser and any other
// parser may disagree on folded headers, RFC 2231 names, preambles and odd boundaries; we
// accept only the plain form every HTTP client library produces and refuse the rest.
//
// Rack 2.2 (lib/rack/multipart.rb, lib/rack/multipart/parser.rb) reads loosely where a
// strict reader would not, and each looseness is a second reading of the same bytes:
// - the boundary comes from the *last* "boundary=" in Content-Type (MULTIPART is
//   %r{\Amultipart/.*boundary=...}, greedy);
// - a part ends at "--boundary" followed by CRLF or "--" with the CRLF *before* it optional
//   (@body_regex = /(.*?)(EOL)?--boundary(EOL|--)/m), and a line counts as a boundary after
//   String#strip;
// - a part's name is the *last* `; name=` on its Content-Disposition line, and that line is
//   found by a search that also looks inside other header values (MULTIPART_CONTENT_DISPOSITION
//   = /Content-Disposition:.*;\s*name=(VALUE)/ni), so a filename or a Content-Type value
//   holding "; name=sudo" renames the field;
// - a part with an empty name takes its filename as the name.
import { malformed } from '../errors.ts';

/** RFC 2046 boundary characters, minus the ones that need quoting or that Rack treats as
 *  delimiters of the boundary value (`"`, `;`, `,`), and minus space and "=". */
const BOUNDARY = /^[A-Za-z0-9'()+_.-]{1,70}$/;
/** A part's Content-Type: a media type and at most a charset, nothing Rack could mistake
 *  for another header or a name parameter. */
const PART_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:;[ \t]*charset=[A-Za-z0-9_.-]+)?$/i;
/** A file name without quotes, backslashes, ";", "=" or control characters: nothing that
 *  could close the quoted value or start another parameter. */
const DISPOSITION = /^form-data; name="([^"]*)"(?:; filename="([^"\\;=\x00-\x1f\x7f]*)")?$/;

/**
 * The boundary of a multipart/form-data Content-Type. Only the plain form is accepted:
 * `multipart/form-data; boundary=X` or `boundary="X"`, with "boundary=" written once.
 */
export function boundaryOf(contentType: string): string {
  const occurrences = contentType.toLowerCase().split('boundary=').length - 1;
  const m = /^multipart\/form-data;[ \t]*boundary=(?:"([^"]*)"|([^";,\s]*))[ \t]*$/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (occurrences !== 1 || boundary === undefined || !BOUNDARY.test(boundary)) {
    throw malformed('multipart-boundary', 'multipart body without a usable boundary');
  }
  return boundary;
}

/** Field names of every part, in order, as sent (not yet checked as parameter names). */
export function multipartFieldNames(body: Buffer, contentType: string): string[] {
  const boundary = boundaryOf(contentType);
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  if (!text.startsWith(delimiter + '\r\n')) throw malformed('multipart-framing', 'multipart body must start with its boundary');
  const close = `\r\n${delimiter}--`;
  const end = text.indexOf(close);
  if (end === -1 || !/^(?:\r\n)?$/.test(text.slice(end + close.length))) {
    throw malformed('multipart-framing', 'multipart body must end with its closing boundary');
  }
  const parts = text.slice(delimiter.length + 2, end).split(`\r\n${delimiter}\r\n`);
  // Rack also ends a part at a boundary not preceded by CRLF, or followed by spaces: any
  // other occurrence of the delimiter inside a part would start a part we never saw.
  if (parts.some((part) => part.includes(delimiter))) {
    throw malformed('multipart-framing', 'multipart boundary appears inside a part');
  }
  return parts.map(partName);
}

function partName(part: string): string {
  const headerEnd = part.indexOf('\r\n\r\n');
  if (headerEnd === -1) throw malformed('multipart-framing', 'multipart part without headers');
  let name: string | undefined;
  let type: string | undefined;
  for (const line of part.slice(0, headerEnd).split('\r\n')) {
    const m = /^([A-Za-z-]+):[ \t]*(.*)$/.exec(line);
    if (!m) throw malformed('multipart-header', 'malformed multipart part header');
    const header = m[1]!.toLowerCase();
    const value = m[2]!;
    if (header === 'content-type' && type === undefined) {
      if (!PART_TYPE.test(value)) throw malformed('multipart-header', 'unexpected multipart part content-type');
      type = value;
      continue;
    }
    if (header !== 'content-disposition' || name !== undefined) throw malformed('multipart-header', 'unexpected multipart part header');
    const d = DISPOSITION.exec(value);
    if (!d || d[1] === '') throw malformed('multipart-header', 'unexpected multipart content-disposition');
    name = d[1]!;
  }
  if (name === undefined) throw malformed('multipart-header', 'multipart part without a name');
  return name;
}
