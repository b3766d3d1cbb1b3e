/**
 * `mda limit max-session N max-session-per-user N`: at most N deliveries at once, and at most M
 * for one user, so one busy mailbox cannot take every slot. Waiters are served first come, first
 * served among those whose user has room (mda_drain's round over runnable users).
 */

export const DEFAULT_MAX_SESSION = 50;
export const DEFAULT_MAX_SESSION_PER_USER = 7;

interface Waiter {
  user: string;
  grant: () => void;
}

export class SessionLimiter {
  private running = 0;
  private readonly perUser = new Map<string, number>();
  private waiting: Waiter[] = [];

  constructor(
    readonly maxTotal = DEFAULT_MAX_SESSION,
    readonly maxPerUser = DEFAULT_MAX_SESSION_PER_USER,
  ) {}

  /** Wait for a slot for `user`; call the returned function exactly once to give it back. */
  acquire(user: string): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiting.push({ user, grant: () => resolve(this.releaser(user)) });
      this.drain();
    });
  }

  get active(): number {
    return this.running;
  }

  get pending(): number {
    return this.waiting.length;
  }

  activeFor(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  private releaser(user: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const n = (this.perUser.get(user) ?? 1) - 1;
      if (n === 0) this.perUser.delete(user);
      else this.perUser.set(user, n);
      this.drain();
    };
  }

  private drain(): void {
    const still: Waiter[] = [];
    for (const w of this.waiting) {
      if (this.running < this.maxTotal && this.activeFor(w.user) < this.maxPerUser) {
        this.running++;
        this.perUser.set(w.user, this.activeFor(w.user) + 1);
        w.grant();
      } else {
        still.push(w);
      }
    }
    this.waiting = still;
  }
}
