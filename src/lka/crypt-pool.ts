/**
 * Password checks off the event loop: a few worker threads (crypt-worker.ts) take them in turn.
 * The queue of checks is bounded, so a flood of AUTH attempts gets 454 instead of memory.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const MAX_WAITING = 1000;

interface Job {
  id: number;
  hash: string;
  password: string;
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

export class CryptPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly waiting: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private nextId = 1;

  constructor(private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  verify(hash: string, password: string): Promise<boolean> {
    if (this.waiting.length >= MAX_WAITING) return Promise.reject(new Error('too many password checks waiting'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, hash, password, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const worker = this.idle.pop() ?? this.spawn();
      if (!worker) return;
      const job = this.waiting.shift()!;
      this.running.set(worker, job);
      worker.postMessage({ id: job.id, hash: job.hash, password: job.password });
    }
  }

  private spawn(): Worker | undefined {
    if (this.all.length >= this.size) return undefined;
    const worker = new Worker(new URL('./crypt-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (m: { id: number; ok: boolean }) => {
      const job = this.running.get(worker);
      this.running.delete(worker);
      if (job?.id === m.id) job.resolve(m.ok);
      this.idle.push(worker);
      this.pump();
    });
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', () => this.lost(worker, new Error('password check thread exited')));
    this.all.push(worker);
    return worker;
  }

  private lost(worker: Worker, err: Error): void {
    this.running.get(worker)?.reject(err);
    this.running.delete(worker);
    const i = this.all.indexOf(worker);
    if (i >= 0) this.all.splice(i, 1);
    const j = this.idle.indexOf(worker);
    if (j >= 0) this.idle.splice(j, 1);
    this.pump();
  }
}
