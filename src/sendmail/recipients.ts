/**
 * `sendmail -t`: the recipients named in a message's To, Cc and Bcc headers, and the header
 * section with Bcc removed (a blind copy must not show in what recipients receive). A bare name
 * (`To: bob`) is a local user: qualified with the server's name, as enqueue.c qualify_addr does.
 */

const RECIPIENT_HEADERS = new Set(['to', 'cc', 'bcc']);

/** Split header text into logical headers (folded lines joined), stopping at the blank line. */
export function splitHeaders(headerText: string): { name: string; raw: string; value: string }[] {
  const out: { name: string; raw: string; value: string }[] = [];
  for (const line of headerText.split(/\r?\n/)) {
    if (line === '') break;
    const last = out[out.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.raw += `\n${line}`;
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push({ name: line.slice(0, colon).trim().toLowerCase(), raw: line, value: line.slice(colon + 1).trim() });
  }
  return out;
}

/**
 * Addresses in an RFC 5322 address-list, enough for -t: `a@b`, `Name <a@b>`, groups, comments
 * and quoted display names with commas.
 */
export function addressesIn(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  const flush = () => {
    const angle = /<([^<>]*)>/.exec(current);
    const candidate = (angle ? angle[1]! : current.replace(/^[^:]*:/, '')).trim();
    if (/^[^\s@<>]+(?:@[^\s@<>]+)?$/.test(candidate)) out.push(candidate);
    current = '';
  };
  for (const ch of value) {
    if (quoted) {
      if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (ch === ',' || ch === ';')) flush();
    else if (depth === 0) current += ch;
  }
  flush();
  return out;
}

/** enqueue.c qualify_addr: an address without `@` gets `@host`; the empty (null) one stays empty. */
export function qualify(address: string, host: string): string {
  return address !== '' && !address.includes('@') ? `${address}@${host}` : address;
}

export function recipientsFromHeaders(headerText: string, host: string): string[] {
  const rcpts = splitHeaders(headerText)
    .filter((h) => RECIPIENT_HEADERS.has(h.name))
    .flatMap((h) => addressesIn(h.value))
    .map((a) => qualify(a, host));
  return [...new Set(rcpts)];
}

/**
 * The envelope sender a message's From: gives when sendmail has no -f: the last address of the
 * last From: header, qualified (enqueue.c parse_message with get_from, parse_addr_terminal).
 */
export function senderFromHeaders(headerText: string, host: string): string | undefined {
  const from = splitHeaders(headerText).filter((h) => h.name === 'from').flatMap((h) => addressesIn(h.value));
  const last = from[from.length - 1];
  return last === undefined ? undefined : qualify(last, host);
}

/** The header section without its Bcc headers, as the recipients must see it. */
export function withoutBcc(headerText: string): string {
  return splitHeaders(headerText)
    .filter((h) => h.name !== 'bcc')
    .map((h) => h.raw)
    .join('\n');
}
