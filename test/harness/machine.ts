/**
 * A private machine for a test, made of Linux namespaces (root only: see the `namespaces` peer):
 * a mount namespace where /etc is an overlay, so the files a test puts there (/etc/hosts,
 * /etc/resolv.conf, /etc/mail/aliases...) hide the host's without touching them; and optionally
 * a network namespace with lo and veth interfaces named and addressed as the test asks (IPv6
 * duplicate address detection off, so link-local addresses are usable at once). Everything goes
 * away with the last process inside.
 *
 *   const { file, args } = await machineCommand(dir, { etc: { hosts: '127.0.0.7 mx.test\n' } }, [node, script]);
 *   spawn(file, args);   // later: enterCommand(pid, [node, client]) runs in the same network
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface MachineSpec {
  /** Files under /etc (path relative to /etc) with their text, or text and mode. */
  etc?: Record<string, string | Buffer | { content: string | Buffer; mode: number }>;
  /** A network namespace of its own, with these interfaces besides lo. */
  interfaces?: { name: string; addresses: string[] }[];
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function networkScript(interfaces: NonNullable<MachineSpec['interfaces']>): string[] {
  const lines = [
    'echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad',
    'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad',
    'ip link set lo up',
  ];
  interfaces.forEach((i, n) => {
    lines.push(`ip link add ${quote(i.name)} type veth peer name vpeer${n}`, `ip link set vpeer${n} up`);
    for (const a of i.addresses) lines.push(`ip addr add ${quote(a)} dev ${quote(i.name)}`);
    lines.push(`ip link set ${quote(i.name)} up`);
  });
  return lines;
}

/** The command that runs `argv` inside a new machine; `dir` holds its files (the caller removes it). */
export async function machineCommand(dir: string, spec: MachineSpec, argv: string[]): Promise<{ file: string; args: string[] }> {
  const root = await mkdtemp(join(dir, 'machine-'));
  const add = join(root, 'etc');
  const overlay = join(root, 'overlay');
  await mkdir(add);
  await mkdir(overlay);
  for (const [path, value] of Object.entries(spec.etc ?? {})) {
    const file = join(add, path);
    await mkdir(dirname(file), { recursive: true });
    const { content, mode } = typeof value === 'string' || Buffer.isBuffer(value) ? { content: value, mode: 0o644 } : value;
    await writeFile(file, content);
    await chmod(file, mode);
  }
  const script = [
    'set -e',
    `mount -t tmpfs tmpfs ${quote(overlay)}`,
    `mkdir ${quote(`${overlay}/up`)} ${quote(`${overlay}/work`)}`,
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${quote(`${overlay}/up`)},workdir=${quote(`${overlay}/work`)} /etc`,
    `cp -a ${quote(`${add}/.`)} /etc/`,
    ...(spec.interfaces ? networkScript(spec.interfaces) : []),
    'exec "$@"',
  ].join('\n');
  return { file: 'unshare', args: ['-m', ...(spec.interfaces ? ['-n'] : []), '--', '/bin/sh', '-c', script, 'machine', ...argv] };
}

/** A command that runs `argv` in the network namespace of process `pid` (a machine's). */
export function enterCommand(pid: number, argv: string[]): { file: string; args: string[] } {
  return { file: 'nsenter', args: ['-t', String(pid), '-n', '--', ...argv] };
}
