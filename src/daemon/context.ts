/**
 * What the daemon hands every role when it builds it: the config, the role's end of the bus,
 * the clock, the spool directory and the backend choices of `-B`.
 */
import type { Endpoint } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';

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
}
