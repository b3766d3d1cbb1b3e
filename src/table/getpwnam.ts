/**
 * The `getpwnam` backend: system accounts as userinfo, through `getent passwd` so every NSS
 * source the system knows (files, LDAP, systemd...) answers, and nothing blocks the event loop.
 */
import { execFile } from 'node:child_process';
import type { TableBackend, TableService } from './types.js';

const TIMEOUT_MS = 5000;

export class GetpwnamBackend implements TableBackend {
  readonly services = new Set<TableService>(['userinfo']);

  async open(): Promise<void> {}
  async update(): Promise<void> {}

  lookup(_service: TableService, key: string): Promise<string | undefined> {
    // a user name never holds these; refusing them keeps getent's argument a plain name
    if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(key)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      execFile('getent', ['passwd', key], { timeout: TIMEOUT_MS }, (err, stdout) => {
        // getent exits 2 for "no such key"
        if (err && (err as { code?: unknown }).code === 2) return resolve(undefined);
        if (err) return reject(new Error(`getent passwd failed: ${err.message}`));
        const f = stdout.trim().split(':');
        if (f.length < 7) return resolve(undefined);
        resolve(`${f[2]}:${f[3]}:${f[5]}`);
      });
    });
  }

  async entries(): Promise<string[]> {
    return [];
  }

  async fetch(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
