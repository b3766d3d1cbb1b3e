/** The contract every queue storage backend (fs, sqlite, ram) fulfils, and the queue's error type. */
import { TsmtpdError } from '../errors.js';
import type { Envelope } from './envelope.js';
import type { RecordCodec } from './record-codec.js';

export type QueueErrorCode = 'full' | 'io' | 'notfound';

const STABLE: Record<QueueErrorCode, string> = {
  full: 'TSMTPD_ERR_QUEUE_FULL',
  io: 'TSMTPD_ERR_QUEUE_IO',
  notfound: 'TSMTPD_ERR_QUEUE_NOTFOUND',
};

/** `full` means the disk or quota is exhausted (the client gets 452); `io` any other failure (451). */
export class QueueError extends TsmtpdError {
  override name = 'QueueError';
  /** The catalog-wide stable code, for logs and the control protocol. */
  readonly stableCode: string;
  constructor(
    readonly code: QueueErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.stableCode = STABLE[code];
  }

  /** Classify any thrown value: ENOSPC and EDQUOT (and SQLite's FULL) are `full`, the rest `io`. */
  static from(err: unknown, what: string): QueueError {
    if (err instanceof QueueError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const full = code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
    const detail = err instanceof Error ? err.message : String(err);
    return new QueueError(full ? 'full' : 'io', `${what}: ${detail}`, { cause: err });
  }
}

/** A readable body: the first `size` octets of the file at `path` (the fs queue keeps the envelopes after it); release() lets the backend drop a temporary copy. */
export interface BodyHandle {
  path: string;
  size: number;
  release(): Promise<void>;
}

export interface CommitItem {
  msgid: string;
  envelopes: Envelope[];
  /** Octets of the incoming body file: the backend checks it stored exactly these, or fails the commit. */
  size: number;
  /** The incoming body file's descriptor, when the writer still has it open: a backend may use it instead of opening the file again (it does not close it). */
  fd?: number;
  /**
   * Envelopes this message stands in for (the failed ones a report is about). A backend that can
   * delete them in the same commit does, so that a crash between the two cannot have the report
   * generated again (the shared queue: another node would); the others leave them to the caller.
   */
  replaces?: string[];
}

/** A body that is not exactly as long as it should be is never committed: a short write lost data. */
export function checkSize(msgid: string, stored: number, expected: number): void {
  if (stored !== expected) throw new QueueError('io', `message ${msgid}: ${stored} octets stored of ${expected}`);
}

export type WalkEntry = { envelope: Envelope } | { damaged: string; reason: string };

export interface QueueBackend {
  readonly name: string;
  /** How envelope records are written and read; the front sets it before open() (plain by default). */
  records: RecordCodec;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Absolute path of the file the body of a message under reception is written to. */
  incomingPath(msgid: string): string;
  /**
   * Optional: the incoming file of `msgid` made of a file the backend kept, open for writing at
   * its first octet (octets past the body are the backend's to cut at commit), or null for a new
   * file. Throws EEXIST when the incoming file exists, as the exclusive create does.
   */
  recycle?(msgid: string): number | null;
  /**
   * Durably store several messages (their incoming bodies + envelopes) in one go: group commit.
   * All or nothing: on failure nothing of the batch is committed and the incoming bodies remain,
   * so the caller may retry the messages one by one.
   */
  commit(batch: CommitItem[]): Promise<void>;
  /** Drop an uncommitted message (its incoming body). */
  discard(msgid: string): Promise<void>;
  openBody(msgid: string): Promise<BodyHandle>;
  loadEnvelope(evpid: string): Promise<Envelope | undefined>;
  /** Durable; the envelopes may belong to several messages. Unknown envelopes fail with `notfound`. */
  updateEnvelopes(envelopes: Envelope[]): Promise<void>;
  /** Need not be durable (a crash may bring an envelope back: a duplicate, never a loss). A message goes with its last envelope. */
  deleteEnvelopes(evpids: string[]): Promise<void>;
  walk(): AsyncIterable<WalkEntry>;
  /** Committed msgids (for tsmtpctl). */
  messages(): AsyncIterable<string>;

  // --- additions the front needs beyond the brief's list
  /** Whether a msgid is committed, so a fresh random msgid never collides. */
  hasMessage(msgid: string): Promise<boolean>;
  /** Remove every incoming (uncommitted) body left by a previous run; returns how many. */
  purgeIncoming(): Promise<number>;
  /** Move a damaged entry (an evpid, or a msgid whose body is gone) out of the live queue. */
  quarantine(id: string, reason: string): Promise<void>;
  /** A directory for the front's temporary plain-text copies of bodies. */
  tempDir(): string;
}
