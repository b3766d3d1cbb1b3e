/**
 * `senders <t> masquerade`: the From: header of an authenticated user's message names the
 * envelope sender, as OpenSMTPD's header_domain_append_callback() rewrites it. Each address of
 * the field (split at commas outside quotes, comments and escapes) is rewritten by
 * header_address_rewrite_buffer(): the part between `<` and `>` when there is one, else the
 * last word outside comments; a group, or text whose quotes, comments or brackets do not
 * balance, is left as it is.
 */

interface Scan {
  escape: boolean;
  quote: boolean;
  comment: number;
}

/** One step of smtpd's scanner over a header value: its quote, comment and escape state. */
function step(s: Scan, ch: string, escapeInQuote: boolean): void {
  if (ch === '(' && !s.escape && !s.quote) s.comment++;
  if (ch === '"' && !s.escape && !s.comment) s.quote = !s.quote;
  if (ch === ')' && !s.escape && !s.quote && s.comment) s.comment--;
  s.escape = ch === '\\' && !s.escape && !s.comment && (escapeInQuote || !s.quote);
}

/** The field's addresses, split at commas that are outside quotes, comments and escapes. */
export function splitAddresses(value: string): string[] {
  const s: Scan = { escape: false, quote: false, comment: 0 };
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    step(s, ch, true);
    // smtpd tests the escape flag after updating it, so only quotes and comments protect a comma
    if (ch === ',' && !s.escape && !s.quote && !s.comment) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

const SPACE = /\s/;

/** header_address_rewrite_buffer(): put `address` in place of the one this part names. */
export function rewriteAddress(part: string, address: string): string {
  const s: Scan = { escape: false, quote: false, comment: 0 };
  let bracket = 0;
  let hasBracket = false;
  let hasGroup = false;
  let bracketBeg = 0;
  let bracketEnd = 0;
  let componentEnd = 0;
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!;
    step(s, ch, false);
    const plain = !s.escape && !s.comment && !s.quote;
    if (ch === '<' && plain && !bracket) { bracket++; hasBracket = true; bracketBeg = i + 1; }
    if (ch === '>' && plain && bracket) { bracket--; bracketEnd = i; }
    if (ch === ':' && plain) hasGroup = true;
    if (!s.comment && ch !== ')' && !SPACE.test(ch)) componentEnd = i;
  }
  if (s.escape || s.quote || s.comment || bracket || hasGroup) return part;
  if (hasBracket) return part.slice(0, bracketBeg) + address + part.slice(bracketEnd);
  let componentBeg = 0;
  if (componentEnd !== 0) {
    componentBeg = componentEnd;
    while (componentBeg >= 0 && part[componentBeg] !== ')' && !SPACE.test(part[componentBeg]!)) componentBeg--;
    componentBeg++;
    componentEnd++;
  }
  return part.slice(0, componentBeg) + address + part.slice(componentEnd);
}

/** The value of a From: field (after the colon, folds kept) with every address made `sender`. */
export function masqueradeFrom(value: string, sender: string): string {
  return splitAddresses(value).map((part) => rewriteAddress(part, sender)).join(',');
}
