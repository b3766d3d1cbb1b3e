/**
 * OpenSMTPD's table text format (table(5)), shared by `file:` tables and makemap: one entry per
 * line, `#` comments, the first entry deciding list or mapping (`# @list` forces a list), keys
 * lowercased; in a list the whole line is the key, in a mapping the key ends at the first blank
 * or `:` (or at `]` for `[v6]` keys).
 */

export type TableContents =
  | { kind: 'list'; keys: string[] }
  | { kind: 'map'; entries: Map<string, string> };

export class TableFormatError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
  }
}

/**
 * Split one mapping line into key and value, as smtpd's parse_table_line(): the key ends at the
 * first blank or `:` (or after `]` for `[v6]` keys), one delimiter and the blanks after it go.
 */
export function splitEntry(line: string): { key: string; value: string } {
  let end: number;
  if (line.startsWith('[')) {
    const close = line.indexOf(']');
    end = close < 0 ? line.length : close + 1;
    // `[2001:db8::]/32`: the prefix length belongs to the key
    const prefix = /^\/\d+/.exec(line.slice(end));
    if (prefix) end += prefix[0].length;
  } else {
    const m = /[ \t:]/.exec(line);
    end = m ? m.index : line.length;
  }
  const key = line.slice(0, end);
  const value = line.slice(end).replace(/^[ \t:][ \t]*/, '').trim();
  return { key: key.toLowerCase(), value };
}

export function parseTableText(text: string, file: string, forceKind?: 'list' | 'map'): TableContents {
  let kind: 'list' | 'map' | null = forceKind ?? null;
  const keys: string[] = [];
  const entries = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      if (kind === null && /^#\s*@list\s*$/.test(line)) kind = 'list';
      continue;
    }
    if (/[\x00]/.test(line)) throw new TableFormatError(file, i + 1, 'NUL byte in entry');
    const { key, value } = splitEntry(line);
    if (key === '') throw new TableFormatError(file, i + 1, 'empty key');
    kind ??= value === '' ? 'list' : 'map';
    if (kind === 'list') {
      // a list entry is the whole line, colons and blanks included (`2001:db8::/32`)
      keys.push(line.toLowerCase());
    } else {
      if (value === '') throw new TableFormatError(file, i + 1, `mapping table entry without a value: ${key}`);
      entries.set(key, value);
    }
  }
  // a file without entries is a mapping, as smtpd's table_static_priv_load() takes it
  return kind === 'list' ? { kind, keys: [...new Set(keys)] } : { kind: 'map', entries };
}
