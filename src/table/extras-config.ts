/**
 * The configuration files of OpenSMTPD-extras' table-postgres, table-mysql and table-redis:
 * `key value` lines, `#` comments, the key ending at the first blank or `:` (so `key: value`
 * reads too), a key given twice is an error — as their config_load().
 */
import { readFile } from 'node:fs/promises';
import { TableError } from './types.js';

export type ExtrasConfig = Map<string, string>;

export function parseExtrasConfig(text: string, who: string): ExtrasConfig {
  const conf: ExtrasConfig = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.search(/[ \t:]/);
    const key = cut < 0 ? line : line.slice(0, cut);
    // strsep() ate one separator; blanks and a `:` before a blank go too
    const value = cut < 0 ? '' : line.slice(cut + 1).replace(/^(?:\s|:(?=\s))*/, '');
    if (value === '') throw new TableError(`${who}: missing value for key ${key}`);
    if (conf.has(key)) throw new TableError(`${who}: duplicate key ${key}`);
    conf.set(key, value);
  }
  return conf;
}

export async function readExtrasConfig(path: string, who: string): Promise<ExtrasConfig> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new TableError(`${who}: ${path}: ${e.message}`);
  });
  return parseExtrasConfig(text, `${who}: ${path}`);
}

/** A whole number option between `min` and `max`, as their strtonum() checks. */
export function intOption(conf: ExtrasConfig, key: string, dflt: number, min: number, max: number, who: string): number {
  const v = conf.get(key);
  if (v === undefined) return dflt;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new TableError(`${who}: bad value for ${key}: ${v}`);
  return n;
}
