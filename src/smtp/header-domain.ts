/**
 * OpenSMTPD completes the addresses of a message's To:, Cc: and From: headers that have no domain
 * with the listener's hostname (smtp_session.c header_domain_append_callback and
 * header_append_domain_buffer), so `To: bob` written by mail(1) on the server reads
 * `To: bob@mx.example.org`. These are ports of those two functions: the same splitting at commas
 * outside quotes and comments, the same places to insert `@domain`, the same cases left alone
 * (an address with a domain, a group, an empty `<>`, anything unbalanced). Text is a latin1
 * string, one character per octet.
 */

const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';

/** header_domain_append_callback: the value after `Name:`, line ends included, each address completed. */
export function appendDomains(value: string, domain: string): string {
  let out = '';
  let buf = '';
  let escape = false;
  let quote = false;
  let comment = 0;
  for (const ch of value) {
    if (ch === '(' && !escape && !quote) comment++;
    if (ch === '"' && !escape && !comment) quote = !quote;
    if (ch === ')' && !escape && !quote && comment) comment--;
    escape = ch === '\\' && !escape && !comment;
    if (ch === ',' && !escape && !quote && !comment) {
      out += appendDomain(buf, domain) + ',';
      buf = '';
    } else {
      buf += ch;
    }
  }
  return buf ? out + appendDomain(buf, domain) : out;
}

/** header_append_domain_buffer: one address, `@domain` added where it has none. */
export function appendDomain(addr: string, domain: string): string {
  let escape = false;
  let quote = false;
  let comment = 0;
  let bracket = 0;
  let hasDomain = false;
  let hasBracket = false;
  let hasGroup = false;
  let posBracket = 0;
  let posComponent = 0;
  for (let i = 0; i < addr.length; i++) {
    const ch = addr[i]!;
    if (ch === '(' && !escape && !quote) comment++;
    if (ch === '"' && !escape && !comment) quote = !quote;
    if (ch === ')' && !escape && !quote && comment) comment--;
    escape = ch === '\\' && !escape && !comment && !quote;
    if (ch === '<' && !escape && !comment && !quote && !bracket) {
      bracket++;
      hasBracket = true;
    }
    if (ch === '>' && !escape && !comment && !quote && bracket) {
      bracket--;
      posBracket = i;
    }
    if (ch === '@' && !escape && !comment && !quote) hasDomain = true;
    if (ch === ':' && !escape && !comment && !quote) hasGroup = true;
    // the insert point: the last character outside comments that is no space
    if (!comment && ch !== ')' && !isSpace(ch)) posComponent = i;
  }
  if (escape || quote || comment || bracket || hasDomain || hasGroup) return addr;
  let insert: number;
  if (hasBracket) {
    let p = posBracket - 1;
    while (p >= 0 && isSpace(addr[p])) p--;
    if (addr[p] === '<') return addr;
    insert = p + 1;
  } else {
    if (addr.length === 0 || isSpace(addr[posComponent])) return addr;
    insert = posComponent + 1;
  }
  return `${addr.slice(0, insert)}@${domain}${addr.slice(insert)}`;
}
