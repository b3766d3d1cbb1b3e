/**
 * A DNS server for tests, on 127.0.0.1 with a random port, over UDP and TCP (RFC 1035 §4.2),
 * answering from a zone the test sets: A, AAAA, MX, TXT, PTR and CNAME records, NXDOMAIN for
 * unknown names and NODATA for known names without the type asked. Per name, an answer can be
 * delayed, turned into SERVFAIL, or truncated over UDP (so the client must retry over TCP).
 *
 *   const dns = await startDnsServer({ 'example.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] } });
 *   config: `resolver "127.0.0.1:${dns.port}"`;  dns.queries lists what was asked;  await dns.close();
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';

export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  MX?: { preference: number; exchange: string }[];
  TXT?: string[];
  PTR?: string[];
  CNAME?: string;
  ttl?: number;
  /** Answer this name only after so many milliseconds. */
  delayMs?: number;
  servfail?: boolean;
  /** Over UDP, answer with TC set and no records. */
  truncate?: boolean;
}

export interface DnsServer {
  port: number;
  zone: Record<string, ZoneEntry>;
  queries: { name: string; type: string; transport: 'udp' | 'tcp' }[];
  close(): Promise<void>;
}

type Question = { name: string; type: string };

function answer(zone: Record<string, ZoneEntry>, q: Question, transport: 'udp' | 'tcp'): { rcode: string; answers: dnsPacket.Answer[]; truncated: boolean } {
  const name = q.name.toLowerCase().replace(/\.$/, '');
  const entry = zone[name];
  if (!entry) return { rcode: 'NXDOMAIN', answers: [], truncated: false };
  if (entry.servfail) return { rcode: 'SERVFAIL', answers: [], truncated: false };
  if (entry.truncate && transport === 'udp') return { rcode: 'NOERROR', answers: [], truncated: true };
  const ttl = entry.ttl ?? 60;
  const answers: dnsPacket.Answer[] = [];
  if (entry.CNAME && q.type !== 'CNAME') {
    answers.push({ type: 'CNAME', name: q.name, ttl, data: entry.CNAME } as dnsPacket.Answer);
    const target = answer(zone, { name: entry.CNAME, type: q.type }, transport);
    return { rcode: 'NOERROR', answers: [...answers, ...target.answers], truncated: false };
  }
  const data = (entry as Record<string, unknown>)[q.type] as unknown[] | string | undefined;
  for (const d of Array.isArray(data) ? data : data ? [data] : []) {
    const value = q.type === 'TXT' ? [d as string] : d;
    answers.push({ type: q.type, name: q.name, ttl, data: value } as dnsPacket.Answer);
  }
  return { rcode: 'NOERROR', answers, truncated: false };
}

function respond(zone: Record<string, ZoneEntry>, msg: Buffer, transport: 'udp' | 'tcp', log: DnsServer['queries']): Promise<Buffer | null> {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(msg);
  } catch {
    return Promise.resolve(null);
  }
  const q = query.questions?.[0];
  if (!q) return Promise.resolve(null);
  log.push({ name: q.name, type: q.type, transport });
  const a = answer(zone, q, transport);
  const delay = zone[q.name.toLowerCase()]?.delayMs ?? 0;
  // dns-packet takes the rcode as the low four bits of the flags
  const rcode = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 }[a.rcode as 'NOERROR'] ?? 2;
  const reply = dnsPacket.encode({
    id: query.id, type: 'response',
    flags: (a.truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED | rcode,
    questions: [q], answers: a.answers,
  } as dnsPacket.Packet);
  return new Promise((resolve) => setTimeout(() => resolve(reply), delay));
}

/**
 * UDP and TCP on one port: a port free for UDP may be taken for TCP, so a few tries. `host` and
 * `port` (53, as root) serve programs that read /etc/resolv.conf, which has no port.
 */
export async function startDnsServer(zone: Record<string, ZoneEntry> = {}, at: { host?: string; port?: number } = {}): Promise<DnsServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryStart(zone, at.host ?? '127.0.0.1', at.port ?? 0);
    } catch (err) {
      if (attempt >= 5 || at.port || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}

async function tryStart(zone: Record<string, ZoneEntry>, host: string, wanted: number): Promise<DnsServer> {
  const queries: DnsServer['queries'] = [];
  const udp: UdpSocket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    void respond(zone, msg, 'udp', queries).then((reply) => reply && udp.send(reply, rinfo.port, rinfo.address));
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(wanted, host, resolve);
  });
  const port = udp.address().port;
  const sockets = new Set<Socket>();
  const tcp: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void respond(zone, Buffer.from(msg), 'tcp', queries).then((reply) => {
          if (!reply || s.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          s.write(Buffer.concat([len, reply]));
        });
      }
    });
  });
  // the same port number over TCP, as resolvers expect
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err) => {
      udp.close();
      reject(err);
    });
    tcp.listen(port, host, () => resolve());
  });
  return {
    port,
    zone,
    queries,
    async close() {
      udp.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
