/**
 * The control commands on queued mail: `show queue` (smtpctl's `|`-separated line per envelope),
 * `show envelope`, `show message`, `schedule`, `remove`, `pause`/`resume envelope`, `discover`,
 * `pause`/`resume mda|mta` and `show status`.
 */
import type { SchedulerView } from '../bus/messages.js';
import { isEvpid, isMsgid, type Envelope } from '../queue/envelope.js';
import type { CommandEnv, ControlCommand } from './commands.js';
import { envelopeText } from './envelope-text.js';

/** `show queue` sends the listing in pages of this many envelopes, so no reply grows with the queue. */
const SHOW_PAGE = 1000;

const ID = { min: 1, max: 1, names: '<evpid|msgid|all>' };

function family(e: Envelope): string {
  if (e.clientAddress === 'local') return 'local';
  return e.clientAddress.includes(':') ? 'inet6' : 'inet4';
}

/**
 * smtpctl's line: evpid|family|type|flags|sender|rcpt|dest|ctime|expire|lasttry|retry|runstate|delay|error,
 * and with a shared queue, the node that holds the envelope's lease as a 15th field.
 */
export function queueLine(e: Envelope, s: SchedulerView | undefined, now: number): string {
  const flags = [e.bounce ? 'bounce' : '', e.authUser ? 'auth' : '', s?.suspended ? 'suspend' : ''].filter(Boolean).join(',');
  const runstate = s ? s.state : 'offline';
  const clean = (v: string) => v.replace(/[|\r\n]/g, ' ');
  return [
    e.id, family(e), e.bounce ? 'bounce' : e.kind, flags, clean(e.sender), clean(e.origRcpt), clean(e.rcpt),
    e.createdAt, e.createdAt + e.ttl, e.lastTry, e.tries, runstate, Math.max(0, now - e.createdAt), clean(e.lastError ?? ''),
    ...(s?.holder ? [clean(s.holder)] : []),
  ].join('|');
}

/** A streamed listing: pages in envelope id order, each with its lines, until the queue is walked. */
async function* showQueue(env: CommandEnv, [msgid]: string[]): AsyncGenerator<{ envelopes: unknown[]; text: string }> {
  for (let after = ''; ;) {
    const { envelopes, truncated } = await env.bus.request('control.queue.list', { ...(msgid ? { msgid } : {}), limit: SHOW_PAGE, after });
    const { entries } = await env.bus.request('control.scheduler.list', { evpids: envelopes.map((e) => e.id) });
    const states = new Map(entries.map((s) => [s.evpid, s]));
    const now = Math.floor(env.now() / 1000);
    yield {
      envelopes: envelopes.map((e) => ({ ...e, scheduler: states.get(e.id) ?? null })),
      text: envelopes.map((e) => `${queueLine(e, states.get(e.id), now)}\n`).join(''),
    };
    if (!truncated || envelopes.length === 0) return;
    after = envelopes.at(-1)!.id;
  }
}

function show(what: 'envelope' | 'message') {
  return async (env: CommandEnv, [id]: string[]) => {
    const res = await env.bus.request('control.queue.show', { id: id!, what });
    if (!res.found) throw new Error(`no such ${what}: ${id}`);
    // --json prints the envelope as tsmtpd keeps it; the text is smtpctl's envelope file
    if (res.envelope) return { envelope: res.envelope, text: envelopeText(res.envelope) };
    return { text: res.text };
  };
}

function scheduler(op: 'schedule' | 'remove' | 'suspend' | 'resume') {
  return async (env: CommandEnv, [target]: string[]) => {
    // `schedule` means "try now": a route in backoff would turn the attempt away without a try,
    // so its backoff is lifted first (OpenSMTPD needs a separate `resume route` for that)
    if (op === 'schedule' && (target === 'all' || isEvpid(target!) || isMsgid(target!))) await env.bus.request('control.mta.resume-route', {});
    const { count } = await env.bus.request('control.scheduler.command', { op, target: target! });
    return { count, text: `${count} envelope${count === 1 ? '' : 's'} ${op === 'remove' ? 'removed' : op === 'schedule' ? 'scheduled' : op === 'suspend' ? 'paused' : 'resumed'}\n` };
  };
}

function pauseKind(kind: 'mda' | 'mta', paused: boolean) {
  return async (env: CommandEnv) => {
    const { changed } = await env.bus.request('control.scheduler.pause', { kind, paused });
    return { text: changed ? 'command succeeded\n' : `${kind} is already ${paused ? 'paused' : 'running'}\n` };
  };
}

/** smtpctl's three lines, then one line per process: name, pid, user, uptime, restarts. */
async function status(env: CommandEnv) {
  const [sched, smtp, { processes }] = await Promise.all([
    env.bus.request('control.scheduler.status', {}),
    env.bus.request('control.smtp.pause', { query: true }),
    env.bus.request('control.parent.status', {}),
  ]);
  const s = { mda: sched.mda, mta: sched.mta, smtp: smtp.paused ? 'paused' : 'running' };
  const lines = processes.map((p) => `process ${p.name} pid=${p.pid} user=${p.user} uptime=${p.uptime}s restarts=${p.restarts}`);
  return {
    ...s, envelopes: sched.envelopes, inflight: sched.inflight, processes,
    text: `MDA ${s.mda}\nMTA ${s.mta}\nSMTP ${s.smtp}\n${lines.map((l) => l + '\n').join('')}`,
  };
}

async function discover(env: CommandEnv, [id]: string[]) {
  const { count } = await env.bus.request('control.queue.discover', { id: id! });
  return { count, text: `discovered ${count} envelope${count === 1 ? '' : 's'}\n` };
}

export function queueCommands(): ControlCommand[] {
  const none = { min: 0, max: 0, names: '' };
  return [
    { words: ['show', 'queue'], args: { min: 0, max: 1, names: '[msgid]' }, handler: showQueue },
    { words: ['show', 'envelope'], args: { min: 1, max: 1, names: '<evpid>' }, handler: show('envelope') },
    { words: ['show', 'message'], args: { min: 1, max: 1, names: '<evpid|msgid>' }, handler: show('message') },
    { words: ['show', 'status'], args: none, handler: status },
    { words: ['schedule'], args: ID, handler: scheduler('schedule') },
    { words: ['remove'], args: ID, handler: scheduler('remove') },
    { words: ['pause', 'envelope'], args: ID, handler: scheduler('suspend') },
    { words: ['resume', 'envelope'], args: ID, handler: scheduler('resume') },
    { words: ['discover'], args: { min: 1, max: 1, names: '<evpid|msgid>' }, handler: discover },
    { words: ['pause', 'mda'], args: none, handler: pauseKind('mda', true) },
    { words: ['resume', 'mda'], args: none, handler: pauseKind('mda', false) },
    { words: ['pause', 'mta'], args: none, handler: pauseKind('mta', true) },
    { words: ['resume', 'mta'], args: none, handler: pauseKind('mta', false) },
  ];
}
