/**
 * A query bounded in time whatever the driver does: a pool waiting for a connection, a command
 * already written to a server that stopped answering (node-redis' own timeout covers only commands
 * still waiting to be written).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
