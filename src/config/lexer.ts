/**
 * smtpd.conf's lexical rules, as OpenSMTPD's `yylex()` reads them: `#` comments, `\` line
 * continuation, quoted strings (which may span lines), `{ }` lists that may span lines, `<table>`
 * references, `!`, `,`, the `=` and `=>` separators, and `$macro` references. A bare word starts
 * with a letter, a digit, `:` or `_` (or `-` before a digit): anything else, such as a path, must
 * be quoted. Bare words that are OpenSMTPD keywords or numbers are marked, so the parser can
 * refuse them where a name is expected. Pure: text in, tokens with their file and line out.
 */
import { ConfigError } from '../errors.js';
import { isKeyword } from './keywords.js';

export type TokenKind = 'word' | 'string' | 'table' | 'macro' | '{' | '}' | ',' | '=' | '!' | 'eol';

export interface Token {
  kind: TokenKind;
  value: string;
  file: string;
  line: number;
  /** A bare word that is one of OpenSMTPD's keywords (quoted strings never are). */
  keyword?: boolean;
  /** A bare word of digits: smtpd's NUMBER token, which is no STRING (`tag 5`, `{ 1, 2 }`). */
  number?: boolean;
  /** Word characters glued to a `$macro` (`$host:25`): lexed again with the macro's value. */
  glue?: string;
}

/** OpenSMTPD's buffer is 8096 bytes, string included. */
const MAX_TOKEN = 8095;
const WORD_START = /[A-Za-z0-9:_]/;
/** `allowed_in_string()`: printable ASCII but for the characters that are tokens of their own. */
const WORD_CHAR = /[!-~]/;
const NOT_IN_WORD = new Set(['(', ')', '{', '}', '<', '>', '!', '=', '#', ',', '"', "'", '\\']);
const MACRO_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  private i = 0;
  private line = 1;
  private depth = 0;
  private braceLine = 0;
  readonly out: Token[] = [];

  constructor(private readonly text: string, private readonly file: string) {}

  fail(message: string, line = this.line): never {
    throw new ConfigError(this.file, line, message);
  }

  private push(kind: TokenKind, value: string, extra: Partial<Token> = {}): void {
    this.out.push({ kind, value, file: this.file, line: this.line, ...extra });
  }

  private wordChar(c: string | undefined): boolean {
    return c !== undefined && WORD_CHAR.test(c) && !NOT_IN_WORD.has(c);
  }

  run(): Token[] {
    const t = this.text;
    while (this.i < t.length) {
      const c = t[this.i]!;
      if (c === '\n') {
        if (this.depth === 0) this.push('eol', '');
        this.line++;
        this.i++;
      } else if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '\\' && (t[this.i + 1] === '\n' || (t[this.i + 1] === '\r' && t[this.i + 2] === '\n'))) {
        this.i += t[this.i + 1] === '\n' ? 2 : 3;
        this.line++;
      } else if (c === '#') {
        while (this.i < t.length && t[this.i] !== '\n') this.i++;
      } else if (c === '"' || c === "'") this.push('string', this.quoted(c));
      else if (c === '<') this.tableRef();
      else if (c === '{' || c === '}') this.brace(c);
      else if (c === ',' || c === '!') {
        this.push(c, c);
        this.i++;
      } else if (c === '=') {
        // `=>` is OpenSMTPD's ARROW token, a key/value separator like `=`
        const arrow = t[this.i + 1] === '>';
        this.push('=', arrow ? '=>' : '=');
        this.i += arrow ? 2 : 1;
      } else if (c === '$') this.macro();
      else if (WORD_START.test(c) || (c === '-' && /[0-9]/.test(t[this.i + 1] ?? ''))) this.word();
      else this.unexpected(c);
    }
    if (this.depth !== 0) this.fail('syntax error: unterminated {', this.braceLine);
    this.push('eol', '');
    return this.out;
  }

  private unexpected(c: string): never {
    if (c === '-' && this.text[this.i + 1] === '>') this.fail('syntax error: "->" is not a separator (use "=" or "=>")');
    if (/[!-~]/.test(c)) this.fail(`syntax error: unexpected "${c}" (quote a value that starts with it)`);
    return this.fail(`syntax error: unexpected character ${JSON.stringify(c)}`);
  }

  private brace(c: '{' | '}'): void {
    if (c === '{' && this.depth++ === 0) this.braceLine = this.line;
    if (c === '}' && this.depth-- === 0) this.fail('syntax error: unbalanced }');
    this.push(c, c);
    this.i++;
  }

  private word(): void {
    const start = this.i;
    while (this.wordChar(this.text[this.i])) this.i++;
    const word = this.text.slice(start, this.i);
    if (word.length > MAX_TOKEN) this.fail('string too long');
    this.push('word', word, isKeyword(word) ? { keyword: true } : /^-?[0-9]+$/.test(word) ? { number: true } : {});
  }

  /** `$name`: expanded by the parser, statement by statement, so a macro serves the lines after it. */
  private macro(): void {
    let j = this.i + 1;
    while (j < this.text.length && MACRO_CHAR.test(this.text[j]!)) j++;
    const name = this.text.slice(this.i + 1, j);
    let k = j;
    while (this.wordChar(this.text[k])) k++;
    const glue = this.text.slice(j, k);
    this.push('macro', name, glue ? { glue } : {});
    this.i = k;
  }

  /**
   * A quoted string: a newline inside is dropped (the string goes on, as in smtpd), `\` before
   * the quote, a blank or a newline escapes it, any other backslash stays as written.
   */
  private quoted(quote: string): string {
    const t = this.text;
    const start = this.line;
    let value = '';
    this.i++;
    for (;;) {
      if (this.i >= t.length) this.fail('unterminated quoted string', start);
      const ch = t[this.i]!;
      if (ch === quote) break;
      if (ch === '\0') this.fail('syntax error: NUL in a quoted string');
      if (ch === '\n') this.line++;
      else if (ch === '\\' && t[this.i + 1] === '\n') {
        this.line++;
        this.i++;
      } else if (ch === '\\' && (t[this.i + 1] === quote || t[this.i + 1] === ' ' || t[this.i + 1] === '\t')) {
        value += t[++this.i];
      } else value += ch;
      this.i++;
      if (value.length > MAX_TOKEN) this.fail('string too long', start);
    }
    this.i++;
    return value;
  }

  /** `<name>`, `< name >` or `<"name">`; a bare keyword is no table name (`<userbase>`). */
  private tableRef(): void {
    const t = this.text;
    let j = this.i + 1;
    while (t[j] === ' ' || t[j] === '\t') j++;
    let name = '';
    let quoted = false;
    if (t[j] === '"' || t[j] === "'") {
      this.i = j;
      name = this.quoted(t[j]!);
      quoted = true;
      j = this.i;
    } else {
      const s = j;
      while (this.wordChar(t[j])) j++;
      name = t.slice(s, j);
    }
    while (t[j] === ' ' || t[j] === '\t') j++;
    if (t[j] !== '>' || name === '') this.fail('syntax error: bad table reference');
    if (!quoted && isKeyword(name)) this.fail(`syntax error: <${name}>: "${name}" is a keyword, not a table name`);
    this.push('table', name);
    this.i = j + 1;
  }
}

/** Split text into tokens; `eol` ends each statement outside braces. */
export function tokenize(text: string, file: string): Token[] {
  return new Lexer(text, file).run();
}
