/** The ram backend runs the shared suite; it keeps its state across close/open of one instance. */
import { readFile, writeFile } from 'node:fs/promises';
import { RamQueueBackend } from '../../src/queue/ram.js';
import { queueBackendSuite } from './conformance.js';

queueBackendSuite('ram', (spool) => new RamQueueBackend(spool), {
  persistent: false,
  async corruptEnvelope(b, evpid) {
    (b as RamQueueBackend).poke(evpid, 'garbage');
  },
  async rawEnvelope(b, evpid) {
    return Buffer.from((b as RamQueueBackend).peek(evpid)!);
  },
  async tamperBody(b, msgid) {
    const path = (b as RamQueueBackend).bodyPath(msgid);
    const data = await readFile(path);
    data[data.length >> 1] ^= 0x01;
    await writeFile(path, data);
  },
});
