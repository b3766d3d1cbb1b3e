/**
 * A cursor over one statement's tokens with the small vocabulary the grammar files share:
 * peek, take a keyword, take a value, and fail with the statement's file:line.
 */
import { ConfigError } from '../errors.js';
import type { Token } from './lexer.js';
import type { Where } from './types.js';

export class Cursor {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    readonly where: Where,
  ) {}

  fail(message: string, token?: Token): never {
    throw new ConfigError(this.where.file, token?.line ?? this.peekToken()?.line ?? this.where.line, message);
  }

  peekToken(): Token | undefined {
    return this.tokens[this.i];
  }

  done(): boolean {
    return this.i >= this.tokens.length;
  }

  /** The next token's text if it is a bare word (keywords are case-sensitive, as in smtpd.conf). */
  peek(): string | undefined {
    const t = this.tokens[this.i];
    return t && t.kind === 'word' ? t.value : undefined;
  }

  is(kind: Token['kind']): boolean {
    return this.tokens[this.i]?.kind === kind;
  }

  accept(word: string): boolean {
    if (this.peek() === word) {
      this.i++;
      return true;
    }
    return false;
  }

  acceptKind(kind: Token['kind']): boolean {
    if (this.is(kind)) {
      this.i++;
      return true;
    }
    return false;
  }

  expect(word: string): void {
    if (!this.accept(word)) this.fail(`syntax error: expected "${word}"${this.describe()}`);
  }

  expectKind(kind: Token['kind'], what: string): Token {
    const t = this.tokens[this.i];
    if (!t || t.kind !== kind) this.fail(`syntax error: expected ${what}${this.describe()}`);
    this.i++;
    return t;
  }

  /** A word or a quoted string. */
  value(what: string): string {
    const t = this.tokens[this.i];
    if (!t || (t.kind !== 'word' && t.kind !== 'string')) this.fail(`syntax error: expected ${what}${this.describe()}`);
    this.i++;
    return t.value;
  }

  /**
   * A value where OpenSMTPD's grammar wants a STRING (a name, a path, a literal): a bare keyword
   * or number there is a syntax error in smtpd, so it is here; quoted, any text goes.
   */
  name(what: string): string {
    const t = this.tokens[this.i];
    if (t?.keyword) this.fail(`syntax error: "${t.value}" is a keyword: quote it to use it as ${what}`);
    if (t?.number) this.fail(`syntax error: ${t.value} is a number: quote it to use it as ${what}`);
    return this.value(what);
  }

  /** A quoted string only (commands, messages). */
  string(what: string): string {
    return this.expectKind('string', what).value;
  }

  table(what = 'a <table>'): string {
    return this.expectKind('table', what).value;
  }

  /**
   * `{ a, b c }` as smtpd 7.8's string_list, keyval_list and filter_list read it: entries apart by
   * a comma, a newline or blanks (parse.y `comma: ',' optnl | nl | empty`), newlines allowed after
   * `{` and before `}`; no comma first, last or twice. `item` reads one entry.
   */
  braces(what: string, item: () => void): void {
    this.expectKind('{', `{ and ${what}`);
    if (this.acceptKind('}')) this.fail(`syntax error: empty ${what}`);
    for (;;) {
      if (this.is(',')) this.fail(`syntax error: a comma without ${what} before it`);
      item();
      const next = this.peekToken();
      if (next?.kind === '}') break;
      if (this.acceptKind(',') && this.is('}')) this.fail(`syntax error: a comma without ${what} after it`);
    }
    this.expectKind('}', '}');
  }

  end(): void {
    if (!this.done()) this.fail(`syntax error: unexpected ${this.describe(true)}`);
  }

  describe(bare = false): string {
    const t = this.tokens[this.i];
    const text = !t ? 'end of line' : t.kind === 'table' ? `<${t.value}>` : `"${t.value}"`;
    return bare ? text : `, got ${text}`;
  }
}

export function whereOf(t: Token): Where {
  return { file: t.file, line: t.line };
}
