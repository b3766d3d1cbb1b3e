/**
 * libpq's `conninfo`, as table-postgres hands it to PQconnectdb(): a `postgresql://` URI, or
 * `keyword = value` pairs where a value may be single-quoted with `\'` and `\\` inside. The
 * keywords become the pg client's options; one libpq does not know is an error, as there.
 */
import type { ClientConfig } from 'pg';
import { TableError } from './types.js';

const KEYWORDS: Record<string, (c: ClientConfig, v: string) => void> = {
  host: (c, v) => { c.host = v; },
  hostaddr: (c, v) => { c.host = v; },
  port: (c, v) => { c.port = Number(v); },
  user: (c, v) => { c.user = v; },
  password: (c, v) => { c.password = v; },
  dbname: (c, v) => { c.database = v; },
  connect_timeout: (c, v) => { c.connectionTimeoutMillis = Number(v) * 1000; },
  application_name: (c, v) => { c.application_name = v; },
  options: (c, v) => { c.options = v; },
  sslmode: (c, v) => { if (v !== 'disable' && v !== 'allow' && v !== 'prefer') c.ssl = v === 'require' ? { rejectUnauthorized: false } : true; },
};

export function parseConninfo(text: string): ClientConfig {
  if (/^postgres(ql)?:\/\//.test(text)) return { connectionString: text };
  const config: ClientConfig = {};
  let i = 0;
  const blank = () => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  while (true) {
    blank();
    if (i >= text.length) return config;
    const key = /^[A-Za-z_]+/.exec(text.slice(i))?.[0];
    if (!key) throw new TableError(`conninfo: missing keyword at "${text.slice(i, i + 16)}"`);
    i += key.length;
    blank();
    if (text[i] !== '=') throw new TableError(`conninfo: missing "=" after "${key}"`);
    i++;
    blank();
    let value = '';
    if (text[i] === "'") {
      for (i++; ; i++) {
        if (i >= text.length) throw new TableError('conninfo: unterminated quoted string');
        if (text[i] === "'") { i++; break; }
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
      }
    } else {
      for (; i < text.length && !/\s/.test(text[i]!); i++) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
      }
    }
    const set = Object.hasOwn(KEYWORDS, key) ? KEYWORDS[key] : undefined;
    if (!set) throw new TableError(`conninfo: invalid connection option "${key}"`);
    set(config, value);
  }
}
