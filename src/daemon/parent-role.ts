/**
 * The parent's role on the bus: what only the privileged process may do or know. It reads
 * `~/.forward` files and checks system passwords for the lka, pauses the acceptance of
 * connections, lists the processes, and passes log settings to every process.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type ProcessStatus, type Req, type Res } from '../bus/messages.js';
import { checkSystemPassword } from '../lka/auth.js';
import { CryptPool } from '../lka/crypt-pool.js';
import { readForwardFile } from '../lka/forward-file.js';

export interface ParentHooks {
  pause(req: Req<'control.smtp.pause'>): Res<'control.smtp.pause'>;
  status(): ProcessStatus[];
  logLevel(verbose: boolean): void;
  /** Switch trace subsystems and profiles on in every process (smtpd.c IMSG_CTL_TRACE_*, IMSG_CTL_PROFILE_*). */
  tracing(tracing: string[], profiling: string[]): void;
  ban(address: string, durationMs: number): void;
}

async function forward(req: Req<'lka.forward.read'>): Promise<Res<'lka.forward.read'>> {
  try {
    const text = await readForwardFile(req.home, req.uid);
    return text === null ? { result: 'none' } : { result: 'ok', text };
  } catch (err) {
    return { result: 'error', error: (err as Error).message };
  }
}

export function createParentRole(hooks: ParentHooks): Role<'parent'> {
  const crypt = new CryptPool();
  return {
    name: 'parent',
    peers: PEERS.parent,
    handlers: {
      'control.smtp.pause': (req) => hooks.pause(req),
      'control.parent.status': () => ({ processes: hooks.status() }),
      'control.log.level': ({ verbose }) => hooks.logLevel(verbose),
      'control.trace.set': ({ tracing, profiling }) => hooks.tracing(tracing, profiling),
      'lka.forward.read': forward,
      'lka.auth.system': ({ user, password }) => checkSystemPassword(user, password, crypt),
      'lka.auth.ban': ({ address, durationMs }) => hooks.ban(address, durationMs),
    },
    async start() {},
    async stop() {
      await crypt.close();
    },
  };
}
