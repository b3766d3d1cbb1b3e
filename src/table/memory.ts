/** The in-memory store behind static, file and db backends: a loader fills it, update swaps it whole. */
import type { TableBackend, TableService } from './types.js';

export interface Contents {
  kind: 'list' | 'map';
  entries: Map<string, string>;
  /** Keys as written, for regex entries whose case matters; absent means the lowercased keys. */
  written?: string[];
}

/** Holds one loaded snapshot; a failed reload leaves the old snapshot serving. */
export class MemoryBackend implements TableBackend {
  readonly services = 'all' as const;
  private contents: Contents = { kind: 'list', entries: new Map() };
  private rotation = 0;

  constructor(private readonly load: () => Promise<Contents>) {}

  async open(): Promise<void> {
    this.contents = await this.load();
  }

  async update(): Promise<void> {
    const next = await this.load();
    this.contents = next;
    this.rotation = 0;
  }

  async lookup(_service: TableService, key: string): Promise<string | undefined> {
    return this.contents.entries.get(key.toLowerCase());
  }

  async entries(service: TableService): Promise<string[]> {
    if (service === 'regex' && this.contents.written) return this.contents.written;
    return [...this.contents.entries.keys()];
  }

  async fetch(_service: TableService): Promise<string | undefined> {
    const keys = [...this.contents.entries.keys()];
    if (keys.length === 0) return undefined;
    return keys[this.rotation++ % keys.length];
  }

  async close(): Promise<void> {}
}
