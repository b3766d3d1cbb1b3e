/**
 * Every message the roles exchange, in one catalog: type name → receiving role, request payload,
 * reply payload. Names read sender.object.action. Payloads are plain serializable data; a message
 * body never travels here, only its handle (message id and path), so any role can move to a
 * worker or a process of its own later.
 */
import type { DsnParams, Envelope } from '../queue/envelope.js';
import type { Config, FilterPhase } from '../config/types.js';
import type { PhaseVerdict } from '../filter/engine.js';

export type RoleName = 'smtp' | 'lka' | 'queue' | 'scheduler' | 'mta' | 'mda' | 'control' | 'stat' | 'parent';

/**
 * Whom each role may message. The sending bus checks it, and so does the receiving process for
 * messages that arrive over a link: a compromised process cannot reach beyond its own peers.
 */
export const PEERS: Record<RoleName, readonly RoleName[]> = {
  smtp: ['lka', 'queue', 'stat'],
  lka: ['parent', 'queue', 'stat'],
  queue: ['scheduler', 'mta', 'mda', 'lka', 'stat'],
  scheduler: ['queue', 'stat'],
  mta: ['lka', 'queue', 'scheduler', 'stat'],
  mda: ['queue', 'stat'],
  control: ['stat', 'lka', 'queue', 'scheduler', 'mta', 'parent'],
  stat: [],
  parent: ['stat'],
};

/** Who sent a message: the process at the other end of the link it came over (`smtp.2`, `lka`...). */
export interface Origin {
  process: string;
}

/** Where a message body is: inline when small, else read in chunks from the queue with its token. */
export interface BodyRef {
  msgid: string;
  size: number;
  inline?: Buffer;
  /** Names this delivery's reader at the queue (`*.body.read`). */
  token?: string;
}

/** What a session knows about its client, handed to the lka for rules, filters and lookups. */
export interface SessionFacts {
  sessionId: string;
  /** Index of the listener in Config.listeners. */
  listener: number;
  /** `1.2.3.4`, `::1`, or `local` for the socket listener. */
  clientAddress: string;
  clientPort: number;
  localAddress: string;
  localPort: number;
  rdns?: string;
  fcrdns?: 'pass' | 'fail' | 'error';
  helo?: string;
  authUser?: string;
  /** The listener's `tag`, matched by `match tag`. */
  tag?: string;
  tls: boolean;
  /** The client is on the enqueue socket (`from socket`, `from local`). */
  socket: boolean;
}

/** A reply to send to the client, as the lka or a filter decided it. */
export interface WireReply {
  code: number;
  enhanced?: string;
  text: string;
}

/** A delivery outcome, from mta and mda back to the queue. */
/**
 * `remoteMta`: the host whose reply decided the result (a report's Remote-MTA). `relayed`: an
 * SMTP next hop took the message on (not a final delivery) and whether it offered DSN, so that
 * NOTIFY went with it (OpenSMTPD's MTA_EXT_DSN in IMSG_MTA_DELIVERY_OK).
 */
export type DeliveryResult =
  | { result: 'ok'; detail: string; remoteMta?: string; relayed?: { dsn: boolean } }
  | { result: 'tempfail'; enhanced: string; detail: string; remoteMta?: string }
  | { result: 'permfail'; enhanced: string; detail: string; remoteMta?: string }
  /** The route or host failed before the envelope was tried; reschedule without counting a try. */
  | { result: 'loop'; enhanced: string; detail: string; remoteMta?: string };

/** What the mta answers for one envelope: a delivery result, or "wait for this relay" (task-hiwat). */
export type MtaResult = DeliveryResult | { result: 'hold'; holdq: string };

/** One envelope as the scheduler sees it, for `tsmtpctl show queue`. */
export interface SchedulerView {
  evpid: string;
  state: 'pending' | 'inflight';
  suspended: boolean;
  tries: number;
  lastTry: number;
  nextTry: number;
  expiresAt: number;
  /** With a shared queue: the node whose lease the envelope is under. */
  holder?: string;
}

/** What the lka decided for one RCPT TO. */
export type RcptDecision =
  | { result: 'accept'; envelopes: Omit<Envelope, 'id' | 'msgid'>[] }
  | { result: 'reject'; reply: WireReply }
  | { result: 'tempfail'; reply: WireReply };

/** The whole catalog. `to` is the role that handles the message; `res` is `void` for notifications. */
export interface Catalog {
  // --- smtp → lka
  'smtp.session.connect': {
    to: 'lka';
    req: { facts: SessionFacts };
    /** serverName: the listener's `hostnames <t>` name for the session's local address, if any. */
    res: { rdns?: string; fcrdns: 'pass' | 'fail' | 'error'; serverName?: string };
  };
  'smtp.auth.check': {
    to: 'lka';
    req: { sessionId: string; listener: number; table?: string; user: string; password: string };
    res: { result: 'pass' | 'fail' | 'error' };
  };
  'smtp.mailfrom.check': {
    to: 'lka';
    req: { facts: SessionFacts; sender: string };
    res: { result: 'accept' } | { result: 'reject' | 'tempfail'; reply: WireReply };
  };
  /** The envelopes go from the lka to the queue (`lka.envelopes.stage`): smtp never sees or chooses them. */
  'smtp.rcpt.resolve': {
    to: 'lka';
    /** `msgid`: the message the queue made at MAIL FROM; the envelopes of an accepted recipient go to it. */
    req: { facts: SessionFacts; msgid: string; sender: string; rcpt: string; dsn: DsnParams; smtputf8: boolean };
    res: { result: 'accept' } | { result: 'reject' | 'tempfail'; reply: WireReply };
  };
  /** RSET, a refused message: the session's transaction ends in the lka (its sender is forgotten). */
  'smtp.tx.reset': {
    to: 'lka';
    req: { sessionId: string };
    res: void;
  };
  'smtp.session.close': {
    to: 'lka';
    req: { sessionId: string };
    res: void;
  };
  /** A refused AUTH (wrong password or a broken exchange), for the ban across every worker. */
  'smtp.auth.failure': {
    to: 'lka';
    req: { address: string };
    res: void;
  };

  // --- lka → queue: the envelopes of an accepted recipient, sent before the 250 (lka_submit())
  'lka.envelopes.stage': {
    to: 'queue';
    /** `worker`: the process the RCPT came from; the queue adds the envelopes only to a message of that worker. */
    req: { worker: string; msgid: string; envelopes: Omit<Envelope, 'id' | 'msgid'>[] };
    res: void;
  };

  // --- queue → lka: where a bounce or a delay notice to the sender goes (the ruleset decides, as `from local`)
  'queue.bounce.resolve': {
    to: 'lka';
    req: { rcpt: string };
    res: RcptDecision;
  };

  // --- smtp → lka: the listener's filters: a phase's decision, report events, body lines
  'smtp.filter.phase': {
    to: 'lka';
    req: { facts: SessionFacts; phase: FilterPhase; param: string; sender?: string };
    res: PhaseVerdict;
  };
  'smtp.filter.report': {
    to: 'lka';
    req: { facts: SessionFacts; event: string; params: string[] };
    res: void;
  };
  /** Body lines, dot-escaped and without CRLF; the answer holds the filtered lines ready so far (all of them with `end`). */
  'smtp.filter.data': {
    to: 'lka';
    req: { facts: SessionFacts; lines: string[]; end: boolean };
    res: { lines: string[] };
  };

  // --- smtp → queue
  'smtp.message.create': {
    to: 'queue';
    req: { sessionId: string };
    res: { msgid: string };
  };
  /** Body bytes in order; the reply comes once the queue has taken them, which paces the session. */
  'smtp.message.write': {
    to: 'queue';
    req: { msgid: string; data: Buffer };
    res: void;
  };
  /**
   * The body is complete: `data` is its last bytes, `size` the whole body's octets (the queue
   * checks it holds exactly that many). Store it with the envelopes the lka sent for the message.
   */
  'smtp.message.commit': {
    to: 'queue';
    /** `rcpts`: the recipients the session had accepted; the queue waits for the lka's envelopes of each. */
    req: { msgid: string; size: number; rcpts: number; junk: boolean; data: Buffer };
    res: { result: 'ok'; envelopes: { evpid: string; rcpt: string }[] } | { result: 'tempfail' | 'reject'; reply: WireReply };
  };
  'smtp.message.rollback': {
    to: 'queue';
    req: { msgid: string };
    res: void;
  };

  // --- queue → scheduler
  'queue.envelope.submit': {
    to: 'scheduler';
    req: { envelopes: Envelope[] };
    res: void;
  };
  'queue.envelope.done': {
    to: 'scheduler';
    req: { evpid: string };
    res: void;
  };
  'queue.envelope.retry': {
    to: 'scheduler';
    req: { evpid: string; tries: number; lastTry: number };
    res: void;
  };
  /** The mta's task list for a relay is full: keep these until `mta.holdq.release` for `holdq`. */
  'queue.envelope.hold': {
    to: 'scheduler';
    req: { evpids: string[]; holdq: string };
    res: void;
  };
  // --- mta → scheduler: a relay has room again (task-lowat): release up to `count` held envelopes, 0 = all
  'mta.holdq.release': {
    to: 'scheduler';
    req: { holdq: string; count: number };
    res: void;
  };

  // --- scheduler → queue: deliver these now (queue loads and hands them to mta/mda)
  'scheduler.envelope.schedule': {
    to: 'queue';
    req: { evpids: string[] };
    res: void;
  };
  'scheduler.envelope.expire': {
    to: 'queue';
    req: { evpid: string };
    res: void;
  };
  'scheduler.envelope.warn': {
    to: 'queue';
    req: { evpid: string };
    res: void;
  };

  'scheduler.envelope.remove': {
    to: 'queue';
    req: { evpid: string };
    res: void;
  };

  // --- queue → mta / mda
  /**
   * The due envelopes of one message for one destination, as the scheduler handed them out
   * together: the mta sends them in as few transactions as the server allows. A result per
   * envelope, in order; `hold` means the relay's task list is full (task-hiwat): the scheduler
   * keeps the envelope until the mta releases that hold queue.
   */
  'queue.delivery.mta': {
    to: 'mta';
    req: { envelopes: Envelope[]; body: BodyRef };
    res: { results: MtaResult[] };
  };
  'queue.delivery.mda': {
    to: 'mda';
    req: { envelope: Envelope; body: BodyRef };
    res: DeliveryResult;
  };

  // --- mta / mda → queue: a body too large to travel inline, read in chunks
  'mta.body.read': {
    to: 'queue';
    req: { token: string; offset: number; length: number };
    res: { data: Buffer };
  };
  'mda.body.read': {
    to: 'queue';
    req: { token: string; offset: number; length: number };
    res: { data: Buffer };
  };

  // --- mta → lka: the tables of relay actions (relay hosts, credentials, source addresses, helo names)
  'mta.table.lookup': {
    to: 'lka';
    req: { table: string; service: 'relayhost' | 'credentials' | 'addrname'; key: string } | { table: string; service: 'source' };
    res: { found: false } | { found: true; value: string };
  };

  // --- lka → parent: what an unprivileged process cannot do
  /** `~/.forward`, read as its owner would be allowed to (the lka cannot enter home directories). */
  'lka.forward.read': {
    to: 'parent';
    req: { username: string; uid: number; gid: number; home: string };
    res: { result: 'ok'; text: string } | { result: 'none' } | { result: 'error'; error: string };
  };
  /** `smtp ban`: turn the address away at connect for this long. */
  'lka.auth.ban': {
    to: 'parent';
    req: { address: string; durationMs: number };
    res: void;
  };
  /** AUTH against the system's accounts: the shadow file is root's. */
  'lka.auth.system': {
    to: 'parent';
    req: { user: string; password: string };
    res: { result: 'pass' | 'fail' | 'error' };
  };

  // --- anyone → stat (notifications)
  'stat.increment': {
    to: 'stat';
    req: { key: string; labels?: Record<string, string>; by?: number };
    res: void;
  };
  'stat.decrement': {
    to: 'stat';
    req: { key: string; labels?: Record<string, string>; by?: number };
    res: void;
  };
  'stat.set': {
    to: 'stat';
    req: { key: string; labels?: Record<string, string>; value: number };
    res: void;
  };

  // --- control → stat
  'control.stat.list': {
    to: 'stat';
    req: Record<string, never>;
    res: { stats: { key: string; labels: Record<string, string>; value: number; kind: 'counter' | 'gauge' }[] };
  };

  // --- control → parent: it accepts the connections, so it pauses them; it knows every process
  'control.smtp.pause': {
    to: 'parent';
    /** `query` only reports the state (`show status`). */
    req: { paused: boolean; query?: boolean } | { query: true };
    res: { paused: boolean; changed: boolean };
  };

  // --- control → queue
  'control.queue.list': {
    to: 'queue';
    /** Envelopes in id order, after `after` when given: `show queue` pages through a big queue. */
    req: { msgid?: string; limit: number; after?: string };
    res: { envelopes: Envelope[]; truncated: boolean };
  };
  'control.queue.show': {
    to: 'queue';
    req: { id: string; what: 'envelope' | 'message' };
    /** An envelope comes as data (control prints it as smtpctl does), a message as its text. */
    res: { found: boolean; text: string; envelope?: Envelope };
  };
  'control.queue.discover': {
    to: 'queue';
    req: { id: string };
    res: { count: number };
  };

  // --- control → scheduler
  'control.scheduler.list': {
    to: 'scheduler';
    /** Entries of one message, of the envelopes named, or all. */
    req: { msgid?: string; evpids?: string[] };
    res: { entries: SchedulerView[] };
  };
  'control.scheduler.command': {
    to: 'scheduler';
    /** target: an evpid, a msgid or `all`. */
    req: { op: 'schedule' | 'remove' | 'suspend' | 'resume'; target: string };
    res: { count: number };
  };
  'control.scheduler.pause': {
    to: 'scheduler';
    req: { kind: 'mda' | 'mta'; paused: boolean };
    res: { changed: boolean };
  };
  'control.scheduler.status': {
    to: 'scheduler';
    req: Record<string, never>;
    res: { mda: 'running' | 'paused'; mta: 'running' | 'paused'; envelopes: number; inflight: number };
  };

  // --- control → mta
  'control.mta.show': {
    to: 'mta';
    req: { what: 'hosts' | 'relays' | 'routes' | 'hoststats' };
    res: { lines: string[]; items: Record<string, string | number>[] };
  };
  'control.mta.resume-route': {
    to: 'mta';
    /** One route by its key; without one, every route in backoff (what `schedule` asks first). */
    req: { route?: string };
    res: { found: boolean };
  };

  // --- control → lka
  'control.table.update': {
    to: 'lka';
    req: { name: string };
    res: { result: 'ok' } | { result: 'error'; error: string };
  };

  'control.parent.status': {
    to: 'parent';
    req: Record<string, never>;
    res: { processes: ProcessStatus[] };
  };
  /** `log verbose` / `log brief`: every process's log level changes, as a message to each. */
  'control.log.level': {
    to: 'parent';
    req: { verbose: boolean };
    res: void;
  };
  /** `trace`/`untrace`, `profile`/`unprofile`: what is on now; the parent tells every process. */
  'control.trace.set': {
    to: 'parent';
    req: { tracing: string[]; profiling: string[] };
    res: void;
  };

  // --- control → any role
  'control.config.reload': {
    to: 'lka';
    req: { config: Config };
    res: void;
  };
}

/** One process of the daemon as `tsmtpctl show status` lists it. */
export interface ProcessStatus {
  name: string;
  pid: number;
  user: string;
  /** Seconds since this process (its current incarnation) started. */
  uptime: number;
  restarts: number;
}

export type MessageType = keyof Catalog;
export type Req<T extends MessageType> = Catalog[T]['req'];
export type Res<T extends MessageType> = Catalog[T]['res'];

/** The message types a role must handle: the compiler checks each role's handler record. */
export type TypesFor<R extends RoleName> = {
  [K in MessageType]: Catalog[K]['to'] extends R ? K : never;
}[MessageType];

export type Handlers<R extends RoleName> = {
  [K in TypesFor<R>]: (req: Req<K>, from: RoleName, origin: Origin) => Promise<Res<K>> | Res<K>;
};

/**
 * How long a request may wait for its answer before it fails (a link waits for its peer process
 * to come back within this too). Deliveries have their own network and MDA timeouts inside.
 */
export const DEFAULT_TIMEOUT_MS = 120_000;
export const TIMEOUTS: Partial<Record<MessageType, number>> = {
  'queue.delivery.mta': 4 * 3600_000,
  'queue.delivery.mda': 3600_000,
  'smtp.message.write': 60_000,
  'mta.body.read': 60_000,
  'mda.body.read': 60_000,
};

/** Which role handles each type, at run time (the bus routes by it). */
export const ROUTES: { [K in MessageType]: Catalog[K]['to'] } = {
  'smtp.session.connect': 'lka',
  'smtp.auth.check': 'lka',
  'smtp.mailfrom.check': 'lka',
  'smtp.rcpt.resolve': 'lka',
  'smtp.tx.reset': 'lka',
  'smtp.session.close': 'lka',
  'smtp.auth.failure': 'lka',
  'queue.bounce.resolve': 'lka',
  'smtp.filter.phase': 'lka',
  'smtp.filter.report': 'lka',
  'smtp.filter.data': 'lka',
  'smtp.message.create': 'queue',
  'lka.envelopes.stage': 'queue',
  'smtp.message.write': 'queue',
  'smtp.message.commit': 'queue',
  'smtp.message.rollback': 'queue',
  'queue.envelope.submit': 'scheduler',
  'queue.envelope.done': 'scheduler',
  'queue.envelope.retry': 'scheduler',
  'queue.envelope.hold': 'scheduler',
  'mta.holdq.release': 'scheduler',
  'scheduler.envelope.schedule': 'queue',
  'scheduler.envelope.expire': 'queue',
  'scheduler.envelope.warn': 'queue',
  'scheduler.envelope.remove': 'queue',
  'control.queue.list': 'queue',
  'control.queue.show': 'queue',
  'control.queue.discover': 'queue',
  'control.scheduler.list': 'scheduler',
  'control.scheduler.command': 'scheduler',
  'control.scheduler.pause': 'scheduler',
  'control.scheduler.status': 'scheduler',
  'queue.delivery.mta': 'mta',
  'queue.delivery.mda': 'mda',
  'stat.increment': 'stat',
  'stat.decrement': 'stat',
  'stat.set': 'stat',
  'control.stat.list': 'stat',
  'control.smtp.pause': 'parent',
  'control.parent.status': 'parent',
  'control.log.level': 'parent',
  'control.trace.set': 'parent',
  'mta.body.read': 'queue',
  'mda.body.read': 'queue',
  'mta.table.lookup': 'lka',
  'lka.forward.read': 'parent',
  'lka.auth.system': 'parent',
  'lka.auth.ban': 'parent',
  'control.mta.show': 'mta',
  'control.mta.resume-route': 'mta',
  'control.table.update': 'lka',
  'control.config.reload': 'lka',
};
