/**
 * The in-process bus the roles talk over. A role declares its peers when it registers; a message
 * to any other role is refused, so the conversation between roles stays as DESIGN.md draws it.
 * Delivery is asynchronous (a handler never runs inside its caller's stack), as it would be if
 * the roles lived in separate processes.
 */
import { BusError } from '../errors.js';
import { ROUTES, type Handlers, type MessageType, type Req, type Res, type RoleName } from './messages.js';

/** What every role is: a name, the peers it may message, its handlers, and a lifecycle. */
export interface Role<R extends RoleName = RoleName> {
  readonly name: R;
  readonly peers: readonly RoleName[];
  readonly handlers: Handlers<R>;
  start(): Promise<void>;
  /** Stop taking work and release resources; called in reverse start order. */
  stop(): Promise<void>;
}

type AnyHandler = (req: unknown, from: RoleName) => unknown;

interface Registered {
  peers: ReadonlySet<RoleName>;
  handlers: Record<string, AnyHandler>;
}

export class Bus {
  private readonly roles = new Map<RoleName, Registered>();

  /**
   * With `checkSerializable`, every payload is passed through structuredClone, as a process
   * boundary would copy it: tests turn this on so that no role comes to rely on shared objects.
   */
  constructor(private readonly options: { checkSerializable?: boolean } = {}) {}

  register<R extends RoleName>(role: Role<R>): void {
    if (this.roles.has(role.name)) throw new BusError(`role ${role.name} registered twice`);
    this.roles.set(role.name, {
      peers: new Set(role.peers),
      handlers: role.handlers as unknown as Record<string, AnyHandler>,
    });
  }

  /** Send a request from one role and wait for the reply of the role that handles its type. */
  async request<T extends MessageType>(from: RoleName, type: T, req: Req<T>): Promise<Res<T>> {
    const handler = this.route(from, type);
    const payload = this.options.checkSerializable ? structuredClone(req) : req;
    await Promise.resolve();
    const res = (await handler(payload, from)) as Res<T>;
    return this.options.checkSerializable && res !== undefined ? structuredClone(res) : res;
  }

  /** Fire and forget: a notification's failure is a bug in its handler, logged by the caller's hook. */
  notify<T extends MessageType>(from: RoleName, type: T, req: Req<T>, onError?: (err: unknown) => void): void {
    this.request(from, type, req).catch((err) => (onError ? onError(err) : queueMicrotask(() => { throw err; })));
  }

  /** The sender-side view of the bus that a role keeps. */
  endpoint(from: RoleName): Endpoint {
    return {
      request: (type, req) => this.request(from, type, req),
      notify: (type, req, onError) => this.notify(from, type, req, onError),
    };
  }

  private route(from: RoleName, type: MessageType): AnyHandler {
    const to = ROUTES[type];
    const sender = this.roles.get(from);
    if (!sender) throw new BusError(`unknown sender role ${from}`);
    if (!sender.peers.has(to)) throw new BusError(`${from} may not message ${to} (${type})`);
    const target = this.roles.get(to);
    if (!target) throw new BusError(`no role ${to} for ${type}`);
    const handler = target.handlers[type];
    if (!handler) throw new BusError(`role ${to} has no handler for ${type}`);
    return handler;
  }
}

export interface Endpoint {
  request<T extends MessageType>(type: T, req: Req<T>): Promise<Res<T>>;
  notify<T extends MessageType>(type: T, req: Req<T>, onError?: (err: unknown) => void): void;
}
