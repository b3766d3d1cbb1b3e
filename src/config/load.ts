/** Reads smtpd.conf (and its includes) from disk and parses it. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseConfig } from './parse.js';
import type { Config } from './types.js';

export { parseConfig } from './parse.js';

export function loadConfig(path: string, opts: { macros?: Record<string, string> } = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, 0, `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, {
    file: path,
    macros: opts.macros,
    readInclude: (p) => readFileSync(resolve(p), 'utf8'),
  });
}
