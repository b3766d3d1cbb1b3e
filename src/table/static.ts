/**
 * The `static` and `file` backends: contents held in memory, from the config's inline `{...}` or
 * from a table(5) text file that `update` reads again (keeping the old contents if the new file
 * is broken).
 */
import { readFile } from 'node:fs/promises';
import type { TableDecl } from '../config/types.js';
import { parseTableText, type TableContents } from './file-format.js';
import type { TableBackend, TableService } from './types.js';

export class StaticBackend implements TableBackend {
  readonly services = 'all' as const;
  private contents: TableContents = { kind: 'list', keys: [] };
  private rotation = 0;

  constructor(private readonly decl: Pick<TableDecl, 'name' | 'config' | 'inline'>) {}

  async open(): Promise<void> {
    this.contents = await this.load();
  }

  async update(): Promise<void> {
    // inline tables have nothing to reload; a file is parsed whole before it replaces anything
    if (this.decl.inline) return;
    this.contents = await this.load();
  }

  private async load(): Promise<TableContents> {
    const inline = this.decl.inline;
    if (inline) {
      return inline.kind === 'list'
        ? { kind: 'list', keys: inline.values.map((v) => v.toLowerCase()) }
        : { kind: 'map', entries: new Map(inline.entries.map(([k, v]) => [k.toLowerCase(), v])) };
    }
    const path = this.decl.config.replace(/^file:/, '');
    return parseTableText(await readFile(path, 'utf8'), path);
  }

  async lookup(_service: TableService, key: string): Promise<string | undefined> {
    const k = key.toLowerCase();
    if (this.contents.kind === 'map') return this.contents.entries.get(k);
    return this.contents.keys.includes(k) ? '' : undefined;
  }

  async entries(): Promise<string[]> {
    // sorted, as OpenSMTPD's dictionary iterates: the first match is predictable
    const keys = this.contents.kind === 'map' ? [...this.contents.entries.keys()] : this.contents.keys;
    return [...keys].sort();
  }

  async fetch(): Promise<string | undefined> {
    const keys = this.contents.kind === 'map' ? [...this.contents.entries.values()] : this.contents.keys;
    if (keys.length === 0) return undefined;
    return keys[this.rotation++ % keys.length];
  }

  async close(): Promise<void> {}
}
