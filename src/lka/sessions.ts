/**
 * What the lka remembers of each smtp session, so that a worker cannot make it up: the user it
 * authenticated, and the sender of its transaction with the message the queue made for it.
 * Sessions are keyed by the worker process the requests came from: one worker cannot reach
 * another's, and a worker that dies takes its own.
 */
interface LkaSession {
  authUser?: string;
  /** `msgid` once the first RCPT named the transaction's message. */
  tx: { sender: string; msgid?: string } | null;
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

  /** MAIL FROM accepted (or, without a senders check, the first RCPT): a new transaction replaces any earlier one. */
  begin(process: string, sessionId: string, sender: string, msgid?: string): void {
    this.session(process, sessionId).tx = msgid === undefined ? { sender } : { sender, msgid };
  }

  /**
   * The sender of the session's transaction for `msgid`, binding a checked transaction to the
   * message of its first RCPT; undefined when the transaction is another message's, or none.
   */
  sender(process: string, sessionId: string, msgid: string): string | undefined {
    const tx = this.sessions.get(this.key(process, sessionId))?.tx;
    if (!tx) return undefined;
    tx.msgid ??= msgid;
    return tx.msgid === msgid ? tx.sender : undefined;
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
