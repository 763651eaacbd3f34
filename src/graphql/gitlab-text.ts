// Where GitLab could read a GraphQL query text differently from graphql-js, and the canonical
// text the proxy forwards instead of the client's. Pure: no I/O.
//
// GitLab (graphql-ruby 2.5.11, pinned in the Gemfile.lock of GitLab 18.3) reads
// the text in two steps that graphql-js does not have:
//  1. app/controllers/graphql_controller.rb `query` runs
//     GraphQL::Language.escape_single_quoted_newlines (lib/graphql/language.rb) on the text of
//     a non-batch request: a raw "\n" or "\r" it believes to be inside a "..." string becomes
//     the two characters "\n" / "\r". Its idea of a string is a "-toggle that knows neither
//     comments nor "\\" before a closing quote, so a quote in a comment shifts it.
//  2. lib/graphql/language/lexer.rb IGNORE_REGEXP ends a "#" comment with Ruby's `.*$`: `.`
//     matches "\r", so a comment runs on to the next "\n", where graphql-js ends it at "\r".
//     Its BLOCK_STRING_REGEXP ends block strings differently around backslashes and quotes,
//     and a byte-order mark is not ignored there.
// The proxy therefore forwards its own print of the checked document (so GitLab executes what
// was checked), and refuses texts whose raw reading could differ (so what was checked is what
// the client meant).
import { Kind, Lexer, print, Source, TokenKind, visit, type DocumentNode, type StringValueNode } from 'graphql';

/**
 * Port of graphql-ruby's GraphQL::Language.escape_single_quoted_newlines (lib/graphql/language.rb),
 * which GitLab's GraphqlController applies to a non-batch query text. Up to 2.6.2 (GitLab 18.3
 * pins 2.5.11) a `"""` does not toggle and a `"` inside a block string does; from 2.6.3 on,
 * `"""` toggles a block-string state in which `"` is ignored. `rules` picks one.
 */
export function escapeSingleQuotedNewlines(text: string, rules: '2.5' | '2.6' = '2.5'): string {
  const chunk = rules === '2.5' ? /(?:\\"|[^"\n\r]|""")+/y : /(?:\\"|[^"\n\r])+/y;
  let inside = false;
  let insideBlock = false;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    if (rules === '2.6' && text.startsWith('"""', pos)) {
      insideBlock = !insideBlock;
      out += '"""';
      pos += 3;
      continue;
    }
    chunk.lastIndex = pos;
    const m = chunk.exec(text);
    if (m) {
      out += m[0];
      pos += m[0].length;
      continue;
    }
    const c = text[pos]!;
    if (c === '"' && !insideBlock) inside = !inside;
    out += inside && c === '\n' ? '\\n' : inside && c === '\r' ? '\\r' : c;
    pos++;
  }
  return out;
}

/**
 * Why GitLab could read this query text otherwise than graphql-js did, or undefined. `text`
 * has already been parsed by graphql-js; `preprocessed` is true for a non-batch request (the
 * only one GitLab runs escape_single_quoted_newlines on).
 */
export function readingDifference(text: string, preprocessed: boolean): string | undefined {
  // graphql-js ends a comment at "\r"; graphql-ruby's `.*$` runs on to the next "\n". A "\r"
  // before "\n" is inside both readings of the comment, a lone one is not.
  if (/\r(?!\n)/.test(text)) return 'a carriage return without a line feed (GitLab ends comments at line feeds only)';
  // Either generation of GitLab's rewriting, so that a GitLab upgrade does not reopen this.
  if (preprocessed && (escapeSingleQuotedNewlines(text, '2.5') !== text || escapeSingleQuotedNewlines(text, '2.6') !== text)) {
    return 'GitLab would rewrite a line break it takes to be inside a string (a quote in a comment or block string, or a string ending in a backslash)';
  }
  const lexer = new Lexer(new Source(text));
  let end = 0;
  for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
    // Between tokens: ignored characters and comments. graphql-ruby does not ignore a BOM.
    if (text.slice(end, token.start).replace(/#[^\r\n]*/g, '').includes('\uFEFF')) return 'a byte-order mark outside a string';
    if (token.kind === TokenKind.BLOCK_STRING) {
      // graphql-ruby's BLOCK_STRING_REGEXP and graphql-js disagree on where a block string
      // with a backslash or a quote inside ends (e.g. \"""" ); graphql-ruby does not unescape
      // \""", splits lines at "\n" only, counts only spaces as indentation and takes \f, \v and
      // \r for blank (block_string.rb trim_whitespace). Text without control characters other
      // than "\n", indented with spaces, reads the same.
      const inner = text.slice(token.start + 3, token.end - 3);
      if (/["\\\x00-\x09\x0b-\x1f\x7f]/.test(inner)) return 'a block string with a quote, backslash or control character inside';
    }
    end = token.end;
  }
  if (text.slice(end).replace(/#[^\r\n]*/g, '').includes('\uFEFF')) return 'a byte-order mark outside a string';
  return undefined;
}

/**
 * The text the proxy forwards: graphql-js's print of the checked document on one line, every
 * string as a "..." string with escapes. It has no comment, no block string and no line break,
 * so escape_single_quoted_newlines leaves it alone and both lexers agree on every token.
 */
export function canonicalText(doc: DocumentNode): string {
  const plain = visit(doc, {
    [Kind.STRING]: (node: StringValueNode) => (node.block ? { ...node, block: false } : undefined),
  });
  // printString escapes every control character, so a line break in the output is never inside
  // a string: the indentation that follows it can go as well.
  const text = print(plain).replace(/\n */g, ' ');
  if (/[\r\n]/.test(text)) throw new Error('canonical GraphQL text has a line break');
  return text;
}
