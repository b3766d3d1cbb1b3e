/**
 * The smtpd.conf parser: tokens are cut into statements at line ends, `$macros` are expanded
 * statement by statement (a `-D` definition wins over the file's), `include` splices a file in,
 * and each statement goes to the grammar of its first word. The result is checked as a whole.
 */
import { ConfigError } from '../errors.js';
import { Cursor } from './cursor.js';
import { defaultsAfterParse, emptyConfig } from './defaults.js';
import { tokenize, type Token } from './lexer.js';
import { parseAction } from './parse-action.js';
import { parseFilter, parseProc } from './parse-filter.js';
import { parseListen } from './parse-listen.js';
import { parseMatch } from './parse-match.js';
import {
  parseBounce, parseCa, parseMda, parseMta, parsePki, parseQueue, parseResolver, parseScheduler, parseSmtp,
  parseSrs, parseStat,
} from './parse-settings.js';
import { parseTable } from './parse-table.js';
import type { Config } from './types.js';
import { validate } from './validate.js';

export interface ParseOptions {
  file: string;
  /** `-D name=value` definitions: they override the file's own. */
  macros?: Record<string, string>;
  /** Reads an included file; absent, `include` is an error. */
  readInclude?: (path: string) => string;
}

type Statement = (c: Cursor, config: Config) => void;

const STATEMENTS: Record<string, Statement> = {
  listen: parseListen, action: parseAction, match: parseMatch, filter: parseFilter, proc: parseProc,
  table: parseTable, pki: parsePki, ca: parseCa, queue: parseQueue, smtp: parseSmtp, mta: parseMta,
  mda: parseMda, scheduler: parseScheduler, bounce: parseBounce, srs: parseSrs, resolver: parseResolver,
  stat: parseStat,
  admd: (c, config) => {
    config.admd = c.name('an authserv-id');
    c.end();
  },
};

const MAX_INCLUDE_DEPTH = 16;

class Parser {
  readonly config: Config;
  private readonly fixed: Set<string>;

  constructor(private readonly options: ParseOptions) {
    this.config = emptyConfig(options.file);
    Object.assign(this.config.macros, options.macros ?? {});
    this.fixed = new Set(Object.keys(options.macros ?? {}));
  }

  parseText(text: string, file: string, depth: number): void {
    let statement: Token[] = [];
    for (const token of tokenize(text, file)) {
      if (token.kind !== 'eol') {
        statement.push(token);
        continue;
      }
      if (statement.length > 0) this.statement(statement, depth);
      statement = [];
    }
  }

  private statement(raw: Token[], depth: number): void {
    const first = raw[0]!;
    const where = { file: first.file, line: first.line };
    if (first.kind === 'word' && raw[1]?.kind === '=' ) return this.defineMacro(raw, where);
    const tokens = this.expand(raw);
    const head = tokens[0];
    if (!head) return;
    const c = new Cursor(tokens.slice(1), where);
    if (head.kind !== 'word') throw new ConfigError(where.file, where.line, 'syntax error');
    if (head.value === 'include') return this.include(c, depth);
    const parse = Object.hasOwn(STATEMENTS, head.value) ? STATEMENTS[head.value] : undefined;
    if (!parse) throw new ConfigError(where.file, where.line, `syntax error: unknown directive: ${head.value}`);
    parse(c, this.config);
  }

  private defineMacro(raw: Token[], where: { file: string; line: number }): void {
    const name = raw[0]!.value;
    // smtpd's varset is STRING '=' STRING: a keyword (`hostname = ...`) or a number is no name
    if (raw[0]!.keyword) throw new ConfigError(where.file, where.line, `syntax error: "${name}" is a keyword, not a macro name`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ConfigError(where.file, where.line, `invalid macro name: ${name}`);
    const values = this.expand(raw.slice(2));
    if (values.length !== 1 || (values[0]!.kind !== 'word' && values[0]!.kind !== 'string') || values[0]!.keyword || values[0]!.number) {
      throw new ConfigError(where.file, where.line, 'syntax error: macro needs one value (quote it if it has spaces, is a number or a keyword)');
    }
    if (!this.fixed.has(name)) this.config.macros[name] = values[0]!.value;
  }

  /** Replace `$name` tokens by the tokens of the macro's value. */
  private expand(tokens: Token[]): Token[] {
    const out: Token[] = [];
    for (const t of tokens) {
      if (t.kind !== 'macro') {
        out.push(t);
        continue;
      }
      const value = Object.hasOwn(this.config.macros, t.value) ? this.config.macros[t.value] : undefined;
      if (value === undefined) throw new ConfigError(t.file, t.line, `macro '${t.value}' not defined`);
      // as smtpd pushes the value back into its input: word characters right after `$name` join it
      for (const m of tokenize(value + (t.glue ?? ''), t.file)) {
        if (m.kind === 'macro') throw new ConfigError(t.file, t.line, `macro '${t.value}' refers to another macro`);
        if (m.kind !== 'eol') out.push({ ...m, line: t.line });
      }
    }
    return out;
  }

  private include(c: Cursor, depth: number): void {
    const path = c.name('a file name');
    c.end();
    if (depth >= MAX_INCLUDE_DEPTH) c.fail('include nested too deeply');
    if (!this.options.readInclude) c.fail(`cannot include ${path}`);
    let text: string;
    try {
      text = this.options.readInclude(path);
    } catch (err) {
      return c.fail(`cannot include ${path}: ${(err as Error).message}`);
    }
    this.parseText(text, path, depth + 1);
  }
}

/** Parse a whole configuration; throws ConfigError with file:line on the first error. */
export function parseConfig(text: string, options: ParseOptions): Config {
  const parser = new Parser(options);
  parser.parseText(text, options.file, 0);
  defaultsAfterParse(parser.config);
  validate(parser.config);
  return parser.config;
}
