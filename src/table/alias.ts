/**
 * aliases(5) values: a comma-separated list of users, addresses, `|commands`, `/files`,
 * `:include:/paths` and `error:code text`, with double quotes protecting commas and spaces.
 */
import type { ExpandTarget } from './types.js';

/** Split on commas outside double quotes; quotes are removed, backslash-escapes kept literal. */
export function splitAliasList(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(current.trim());
      current = '';
    } else current += ch;
  }
  out.push(current.trim());
  return out.filter(Boolean);
}

export function parseAliasTarget(item: string): ExpandTarget | null {
  if (/[\x00-\x1f\x7f]/.test(item.replace(/\t/g, ' '))) return null;
  if (item.startsWith('|')) return { kind: 'command', value: item.slice(1).trim() };
  if (item.startsWith('/')) return { kind: 'file', value: item };
  if (item.toLowerCase().startsWith(':include:')) {
    const path = item.slice(9).trim();
    return path ? { kind: 'include', value: path } : null;
  }
  if (/^error:/i.test(item)) {
    const err = /^error:\s*([45]\d\d)(?:\s+([45]\.\d{1,3}\.\d{1,3}))?\s*(.*)$/i.exec(item);
    return err ? { kind: 'error', code: Number(err[1]), ...(err[2] ? { enhanced: err[2] } : {}), text: err[3] || 'Error' } : null;
  }
  // `\user`: deliver to the mailbox without further alias expansion (aliases(5))
  const name = item.startsWith('\\') ? item.slice(1) : item;
  if (name.includes('@')) return { kind: 'address', value: name };
  return /^[^\s@]+$/.test(name) ? { kind: 'username', value: name } : null;
}

/** Every valid target of a value; malformed items are skipped rather than guessed at. */
export function parseAliasValue(value: string): ExpandTarget[] {
  return splitAliasList(value).map(parseAliasTarget).filter((t): t is ExpandTarget => t !== null);
}
