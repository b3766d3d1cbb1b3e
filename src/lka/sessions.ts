/**
 * What the lka remembers of each smtp session, so that a worker cannot make it up: the user it
 * authenticated, the sender it accepted, and the envelopes it made of the accepted recipients,
 * kept here until the queue claims them at commit. Sessions are keyed by the worker process the
 * requests came from: one worker cannot reach another's, and a worker that dies takes its own.
 */
import type { Envelope } from '../queue/envelope.js';

type NewEnvelope = Omit<Envelope, 'id' | 'msgid'>;

interface LkaSession {
  authUser?: string;
  tx: { sender: string; envelopes: NewEnvelope[] } | null;
}

export class LkaSessions {
  private readonly sessions = new Map<string, LkaSession>();

  private key(process: string, sessionId: string): string {
    return `${process}/${sessionId}`;
  }

  private session(process: string, sessionId: string): LkaSession {
    const key = this.key(process, sessionId);
    let s = this.sessions.get(key);
    if (!s) {
      s = { tx: null };
      this.sessions.set(key, s);
    }
    return s;
  }

  authenticated(process: string, sessionId: string, user: string): void {
    this.session(process, sessionId).authUser = user;
  }

  authUser(process: string, sessionId: string): string | undefined {
    return this.sessions.get(this.key(process, sessionId))?.authUser;
  }

  /** MAIL FROM accepted: a new transaction replaces any earlier one. */
  begin(process: string, sessionId: string, sender: string): void {
    this.session(process, sessionId).tx = { sender, envelopes: [] };
  }

  /** The sender accepted for the session's transaction, or undefined when there is none. */
  sender(process: string, sessionId: string): string | undefined {
    return this.sessions.get(this.key(process, sessionId))?.tx?.sender;
  }

  stage(process: string, sessionId: string, envelopes: NewEnvelope[]): void {
    this.sessions.get(this.key(process, sessionId))?.tx?.envelopes.push(...envelopes);
  }

  /** The transaction's envelopes, handed over once: the transaction ends with the claim. */
  claim(process: string, sessionId: string): NewEnvelope[] {
    const s = this.sessions.get(this.key(process, sessionId));
    const envelopes = s?.tx?.envelopes ?? [];
    if (s) s.tx = null;
    return envelopes;
  }

  reset(process: string, sessionId: string): void {
    const s = this.sessions.get(this.key(process, sessionId));
    if (s) s.tx = null;
  }

  close(process: string, sessionId: string): void {
    this.sessions.delete(this.key(process, sessionId));
  }

  /** A worker went away: everything of its sessions goes too. */
  dropProcess(process: string): void {
    const prefix = `${process}/`;
    for (const key of this.sessions.keys()) if (key.startsWith(prefix)) this.sessions.delete(key);
  }

  get size(): number {
    return this.sessions.size;
  }
}
