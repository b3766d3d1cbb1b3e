/**
 * The envelopes of messages under reception, as the lka sends them for each accepted recipient
 * (lka_submit(): before the client hears 250). The commit knows how many recipients the session
 * accepted and takes the message's envelopes once that many have arrived — they come over the
 * lka's link, not the worker's, so the two may cross — or fails after a while.
 */
import type { Envelope } from './envelope.js';

type NewEnvelope = Omit<Envelope, 'id' | 'msgid'>;

/** How long a commit waits for the lka's envelopes of recipients the session says were accepted. */
export const STAGE_WAIT_MS = 10_000;

interface Staged {
  /** The worker whose session the message is: only the envelopes of its RCPTs are added. */
  owner: string;
  envelopes: NewEnvelope[];
  rcpts: number;
  wake: (() => void) | null;
}

export class StagedEnvelopes {
  private readonly staged = new Map<string, Staged>();

  /** A message `owner` created may now get envelopes. */
  open(msgid: string, owner: string): void {
    this.staged.set(msgid, { owner, envelopes: [], rcpts: 0, wake: null });
  }

  /**
   * One recipient's envelopes, accepted in a session of `worker`; false when the message is not
   * that worker's, or not under reception any more (dropped, committed). The commit may already
   * be waiting: the body can be whole before the lka's message arrives.
   */
  add(msgid: string, worker: string, envelopes: NewEnvelope[]): boolean {
    const s = this.staged.get(msgid);
    if (!s || s.owner !== worker) return false;
    s.envelopes.push(...envelopes);
    s.rcpts++;
    s.wake?.();
    return true;
  }

  /** The envelopes of `rcpts` accepted recipients, once they are all here; the message's staging ends. */
  async take(msgid: string, rcpts: number, waitMs = STAGE_WAIT_MS): Promise<NewEnvelope[]> {
    const s = this.staged.get(msgid);
    if (!s) throw new Error(`no envelopes staged for ${msgid}`);
    try {
      if (s.rcpts < rcpts) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${s.rcpts} of ${rcpts} recipients' envelopes came from the lka`)), waitMs);
          s.wake = () => {
            if (s.rcpts < rcpts) return;
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return s.envelopes;
    } finally {
      this.staged.delete(msgid);
    }
  }

  drop(msgid: string): void {
    this.staged.delete(msgid);
  }
}
