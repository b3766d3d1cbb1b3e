/**
 * What the daemon hands every role when it builds it: the config, the role's end of the bus,
 * the clock, the spool directory, the backend choices of `-B` and the keys the role may hold.
 */
import type { Endpoint } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import type { FilterSpawner } from '../filter/spawn.js';
import type { Keyring } from './keyring.js';

export interface BackendChoice {
  queue: string;
  scheduler: string;
  stat: string;
}

export interface RoleContext {
  config: Config;
  bus: Endpoint;
  clock: Clock;
  /** Absolute path of the spool directory: queue, control socket, local state. */
  spool: string;
  backends: BackendChoice;
  /** The server's own name: `/etc/mail/mailname`, else the host's FQDN. */
  serverName: string;
  verbose: boolean;
  /** Certificates and keys the parent read; when absent (roles built in tests) they are read from the files. */
  keys?: Keyring;
  /** How the lka starts filter processes: through the parent in the daemon; here, when absent. */
  spawnFilter?: FilterSpawner;
}
