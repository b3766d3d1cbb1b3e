/**
 * A password-check thread of the crypt pool: bcrypt and sha-crypt cost tens to hundreds of
 * milliseconds of CPU by design, which must not stall the event loop that serves every session.
 */
import { parentPort } from 'node:worker_threads';
import { verifyPassword } from './credentials.js';

parentPort!.on('message', (m: { id: number; hash: string; password: string }) => {
  verifyPassword(m.hash, m.password).then(
    (ok) => parentPort!.postMessage({ id: m.id, ok }),
    () => parentPort!.postMessage({ id: m.id, ok: false }),
  );
});
