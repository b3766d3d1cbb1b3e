/**
 * A time budget for the client's side of the conversation. The idle timer restarts on every
 * byte, so it cannot stop a client that sends one byte a second; a deadline does: a command
 * line must be complete within its budget, and a message body earns time only as fast as
 * `min-data-rate` (as Postfix's smtpd_min_data_rate: N octets buy N/rate seconds, never more
 * than the budget it started with). The clock is held while the server itself is busy, so a
 * slow filter or disk never counts against the client.
 */
import type { Clock, Timer } from '../clock.js';

export class Deadline {
  private budget = 0;
  private left = 0;
  private since = 0;
  private timer: Timer | null = null;
  private armed = false;

  constructor(
    private readonly clock: Clock,
    private readonly expire: () => void,
  ) {}

  /** A fresh budget of `ms`, not running until `run()`. */
  start(ms: number): void {
    this.stop();
    this.budget = ms;
    this.left = ms;
    this.armed = true;
  }

  /** No budget at all (the client is not in the middle of anything). */
  stop(): void {
    this.hold();
    this.armed = false;
  }

  get active(): boolean {
    return this.armed;
  }

  /** Time earned by the client (body octets), up to the budget the deadline started with. */
  credit(ms: number): void {
    if (!this.armed) return;
    const running = this.timer !== null;
    this.hold();
    this.left = Math.min(this.budget, this.left + ms);
    if (running) this.run();
  }

  /** The client's turn: the budget runs down. */
  run(): void {
    if (!this.armed || this.timer) return;
    this.since = this.clock.now();
    this.timer = this.clock.setTimer(Math.max(0, this.left), () => {
      this.timer = null;
      this.armed = false;
      this.expire();
    });
  }

  /** The server's turn: the budget keeps what is left. */
  hold(): void {
    if (!this.timer) return;
    this.timer.cancel();
    this.timer = null;
    this.left -= this.clock.now() - this.since;
  }
}
