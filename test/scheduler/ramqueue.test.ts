/** The shared scheduler backend suite on ramqueue. */
import { RamQueue } from '../../src/scheduler/ramqueue.js';
import { schedulerBackendSuite } from './conformance.js';

schedulerBackendSuite('ramqueue', () => new RamQueue());
