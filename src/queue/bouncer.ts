/**
 * Delivery status notifications from the queue's side: permanent failures and expiries of one
 * message are gathered for a moment so the sender gets one report listing them all; delay and
 * success notices go out as DSN NOTIFY asks. A failed envelope leaves the queue only once its
 * report is stored, so a crash between the two loses nothing.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeliveryResult } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import { reportNeedsUtf8, shouldNotify, writeDsnReport, type DsnDelay, type DsnKind, type DsnRecipient } from '../bounce/report.js';
import type { Timer } from '../clock.js';
import type { Envelope } from './envelope.js';
import type { Queue } from './queue.js';
import { trace } from '../trace.js';

/** How long the failures of one message are gathered before the report is written. */
const GATHER_MS = 1000;

interface Pending {
  items: { envelope: Envelope; recipient: DsnRecipient }[];
  timer: Timer;
}

export class Bouncer {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly ctx: RoleContext, private readonly queue: Queue) {}

  failed(envelope: Envelope, result: Extract<DeliveryResult, { result: 'permfail' | 'loop' }>): Promise<void> {
    this.gather(envelope, { status: result.enhanced, action: 'failed', diagnostic: result.detail, ...remote(result) });
    return Promise.resolve();
  }

  expired(envelope: Envelope): Promise<void> {
    const last = envelope.lastError ? `; last error: ${envelope.lastError}` : '';
    this.gather(envelope, { status: '5.4.7', action: 'failed', diagnostic: `Delivery time expired${last}` });
    return Promise.resolve();
  }

  /**
   * A delay notice now; the envelope stays queued and remembers when it was warned. It says, as
   * OpenSMTPD's does, for how long the message has been delayed (the warn interval that came due,
   * scheduler.c) and for how long it is kept in the queue (the envelope's ttl).
   */
  async delayed(envelope: Envelope): Promise<void> {
    const now = Math.floor(this.ctx.clock.now() / 1000);
    await this.queue.update([{ ...envelope, lastWarn: now }]);
    if (!shouldNotify(envelope.dsn, 'delay')) return;
    const age = now - envelope.createdAt;
    const due = this.ctx.config.bounce.warnIntervals.filter((d) => d <= age);
    const delay = { delayedFor: due.length ? Math.max(...due) : age, keptFor: envelope.ttl };
    await this.report('delay', [{ envelope, recipient: this.recipient(envelope, { status: '4.4.7', action: 'delayed', diagnostic: envelope.lastError ?? 'Delivery delayed' }) }], delay);
  }

  /**
   * NOTIFY=SUCCESS: a local delivery is reported as delivered; a relay to a next hop that offered
   * DSN got NOTIFY with the message, so the notice is the next hop's to send; one that did not
   * gets a `relayed` notice (queue.c IMSG_MTA_DELIVERY_OK, mta_without_dsn; RFC 3461 §6.2.6.2).
   */
  async delivered(envelope: Envelope, result: Extract<DeliveryResult, { result: 'ok' }>): Promise<void> {
    if (!envelope.dsn.notify?.includes('SUCCESS')) return;
    if (result.relayed?.dsn) return;
    const action = result.relayed ? 'relayed' : 'delivered';
    await this.report('success', [{ envelope, recipient: this.recipient(envelope, { status: '2.0.0', action, ...remote(result) }) }]).catch((err: Error) =>
      log('warn', envelope.id, 'queue', 'dsn-failed', { evpid: envelope.id, error: err.message }));
  }

  /** Write every gathered report now (shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((msgid) => this.flushMessage(msgid)));
  }

  private recipient(e: Envelope, r: Omit<DsnRecipient, 'finalRcpt' | 'origRcpt' | 'orcpt'>): DsnRecipient {
    return { finalRcpt: e.rcpt, origRcpt: e.origRcpt, ...(e.dsn.orcpt ? { orcpt: e.dsn.orcpt } : {}), ...r };
  }

  private gather(envelope: Envelope, r: Omit<DsnRecipient, 'finalRcpt' | 'origRcpt' | 'orcpt'>): void {
    let entry = this.pending.get(envelope.msgid);
    if (!entry) {
      entry = { items: [], timer: this.ctx.clock.setTimer(GATHER_MS, () => void this.flushMessage(envelope.msgid)) };
      this.pending.set(envelope.msgid, entry);
    }
    entry.items.push({ envelope, recipient: this.recipient(envelope, r) });
  }

  private async flushMessage(msgid: string): Promise<void> {
    const entry = this.pending.get(msgid);
    if (!entry) return;
    this.pending.delete(msgid);
    entry.timer.cancel();
    const wanted = entry.items.filter((i) => shouldNotify(i.envelope.dsn, 'failure'));
    try {
      if (wanted.length) await this.report('failure', wanted, undefined, entry.items.map((i) => i.envelope.id));
      await this.queue.remove(entry.items.map((i) => i.envelope.id));
      for (const { envelope } of entry.items) this.ctx.bus.notify('queue.envelope.done', { evpid: envelope.id }, () => undefined);
    } catch (err) {
      // the report could not be stored: keep the envelopes; the scheduler tries them again
      log('warn', msgid, 'queue', 'bounce-failed', { msgid, error: (err as Error).message });
      for (const { envelope } of entry.items) {
        this.ctx.bus.notify('queue.envelope.retry', { evpid: envelope.id, tries: envelope.tries, lastTry: envelope.lastTry }, () => undefined);
      }
    }
  }

  /** Build the report, route it to the original sender and store it as a new message. */
  private async report(kind: DsnKind, items: { envelope: Envelope; recipient: DsnRecipient }[], delay?: DsnDelay, replaces?: string[]): Promise<void> {
    const first = items[0]!.envelope;
    // never a report about a report: the null sender gets nothing back
    if (first.sender === '') {
      log('info', first.msgid, 'queue', 'bounce-dropped', { msgid: first.msgid, reason: 'null sender' });
      return;
    }
    const decision = await this.ctx.bus.request('queue.bounce.resolve', { rcpt: first.sender });
    if (decision.result !== 'accept') {
      const temporary = decision.result === 'tempfail';
      log('warn', first.msgid, 'queue', 'bounce-undeliverable', { msgid: first.msgid, to: `<${first.sender}>`, reason: decision.reply.text });
      if (temporary) throw new Error(decision.reply.text);
      return;
    }
    // the queue's own scratch directory: the spool's top is the parent's
    const out = join(this.queue.backend.tempDir(), `dsn-${randomBytes(8).toString('hex')}`);
    const body = await this.queue.body(first.msgid);
    try {
      await writeDsnReport(out, {
        // the name the message was received under (the listener's hostname), as bounce.c uses
        // the envelope's smtpname: not whatever this machine happens to call itself
        reportingMta: first.hostname || this.ctx.serverName,
        sender: first.sender,
        arrivalDate: new Date(first.createdAt * 1000),
        ...(first.dsn.envid ? { envid: first.dsn.envid } : {}),
        ret: first.dsn.ret ?? 'HDRS',
        kind,
        ...(delay ? { delay } : {}),
        recipients: items.map((i) => i.recipient),
        originalPath: body.path,
        originalSize: body.size,
        clock: this.ctx.clock,
      });
      const now = Math.floor(this.ctx.clock.now() / 1000);
      // a report naming a UTF-8 address is itself UTF-8: it needs SMTPUTF8 wherever it goes
      const utf8 = reportNeedsUtf8(first.sender, items.map((i) => i.recipient));
      const envelopes = decision.envelopes.map((e) => ({
        ...e, sender: '', createdAt: now, bounce: { kind, reportedEnvelopeId: first.id }, smtputf8: e.smtputf8 || utf8,
      }));
      const stored = await this.queue.inject(out, envelopes, replaces);
      this.ctx.bus.notify('queue.envelope.submit', { envelopes: stored }, () => undefined);
      // queue_bounce(): one per bounce envelope stored (monitor's bounce)
      this.ctx.bus.notify('stat.increment', { key: 'queue.bounce', by: stored.length }, () => undefined);
      trace('bounce', first.msgid, 'queue', { kind, to: first.sender, envelopes: stored.map((e) => e.id).join(',') });
      log('info', first.msgid, 'queue', 'bounce', { msgid: first.msgid, kind, to: `<${first.sender}>`, rcpts: items.length });
    } finally {
      await body.release();
      await rm(out, { force: true });
    }
  }
}

/** The host whose reply decided a result, for the report's Remote-MTA. */
function remote(result: DeliveryResult): { remoteMta?: string } {
  return result.remoteMta ? { remoteMta: result.remoteMta } : {};
}
