/**
 * smtpd.conf's lexical rules: `#` comments, `\` line continuation, quoted strings, `{ }` lists
 * that may span lines, `<table>` references, `!`, `=`/`->` separators, and `$macro` references
 * in unquoted words. Pure: text in, tokens with their file and line out.
 */
import { ConfigError } from '../errors.js';

export type TokenKind = 'word' | 'string' | 'table' | 'macro' | '{' | '}' | ',' | '=' | '!' | 'eol';

export interface Token {
  kind: TokenKind;
  value: string;
  file: string;
  line: number;
}

const WORD = /[^\s#"'{}<>,=!\\]/;

/** Split text into tokens; `eol` ends each statement outside braces. */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let depth = 0;
  let braceLine = 0;
  let i = 0;
  const push = (kind: TokenKind, value: string) => out.push({ kind, value, file, line });
  const fail = (msg: string): never => {
    throw new ConfigError(file, line, msg);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      if (depth === 0) push('eol', '');
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      i += text[i + 1] === '\n' ? 2 : 3;
      line++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      let value = '';
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) throw new ConfigError(file, start, 'unterminated quoted string');
        const ch = text[i]!;
        if (ch === c) break;
        if (ch === '\n') fail('unterminated quoted string');
        if (ch === '\\' && text[i + 1] === '\n') {
          // a continued line inside quotes: the newline goes, what follows stays (as smtpd's lexer)
          line++;
          i += 2;
          continue;
        }
        if (ch === '\\' && (text[i + 1] === c || text[i + 1] === '\\')) {
          value += text[i + 1];
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      i++;
      push('string', value);
    } else if (c === '<') {
      const end = text.indexOf('>', i);
      const name = end < 0 ? '' : text.slice(i + 1, end);
      if (end < 0 || !/^[A-Za-z0-9_.:-]+$/.test(name)) fail('syntax error: bad table reference');
      push('table', name);
      i = end + 1;
    } else if (c === '{') {
      if (depth++ === 0) braceLine = line;
      push('{', c);
      i++;
    } else if (c === '}') {
      if (depth === 0) fail('syntax error: unbalanced }');
      depth--;
      push('}', c);
      i++;
    } else if (c === ',' || c === '!') {
      push(c, c);
      i++;
    } else if (c === '=') {
      push('=', c);
      i++;
    } else if (c === '-' && text[i + 1] === '>') {
      push('=', '->');
      i += 2;
    } else if (WORD.test(c)) {
      let word = '';
      while (i < text.length && WORD.test(text[i]!) && !(text[i] === '-' && text[i + 1] === '>')) word += text[i++];
      // `$name` is expanded by the parser, statement by statement, so a macro defined on one
      // line serves the lines after it
      if (word.startsWith('$') && word.length > 1) push('macro', word.slice(1));
      else push('word', word);
    } else {
      fail(`syntax error: unexpected character ${JSON.stringify(c)}`);
    }
  }
  if (depth !== 0) throw new ConfigError(file, braceLine, 'syntax error: unterminated {');
  push('eol', '');
  return out;
}
