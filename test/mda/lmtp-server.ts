/** A tiny scripted LMTP server for tests: records the dialogue and answers as told. */
import { createServer, type Server, type Socket } from 'node:net';

export interface Script {
  greeting?: string;
  /** Reply to RCPT TO:<addr>, default 250. */
  rcpt?: (addr: string) => string;
  /** Replies after the final dot, one per accepted recipient, default 250 each. */
  final?: (accepted: string[]) => string[];
  /** Stop answering at this command (to test timeouts). */
  stallAt?: string;
  /** LHLO keywords after PIPELINING and ENHANCEDSTATUSCODES (`SMTPUTF8`). */
  caps?: string[];
}

export interface Recorded {
  commands: string[];
  data: string[];
}

export async function startLmtpServer(script: Script, listen: { port: number; host: string } | { path: string }): Promise<{ server: Server; recorded: Recorded; close: () => Promise<void>; port: number }> {
  const recorded: Recorded = { commands: [], data: [] };
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    serve(sock, script, recorded);
  });
  await new Promise<void>((resolve) => server.listen(listen, resolve));
  const addr = server.address();
  return {
    server, recorded,
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

function serve(sock: Socket, script: Script, rec: Recorded): void {
  let buf = '';
  let inData = false;
  let dataLines: string[] = [];
  const accepted: string[] = [];
  const say = (s: string): void => { sock.write(s + '\r\n'); };
  say(script.greeting ?? '220 test LMTP ready');
  sock.on('data', (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    for (let nl = buf.indexOf('\r\n'); nl !== -1; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (inData) {
        if (line === '.') {
          inData = false;
          rec.data.push(dataLines.join('\n'));
          dataLines = [];
          for (const r of script.final ? script.final(accepted) : accepted.map(() => '250 2.0.0 Ok')) say(r);
        } else dataLines.push(line);
        continue;
      }
      rec.commands.push(line);
      const verb = line.split(/[ :]/)[0]!.toUpperCase();
      if (script.stallAt === verb) continue;
      if (verb === 'LHLO') say(['test', 'PIPELINING', 'ENHANCEDSTATUSCODES', ...(script.caps ?? [])].map((k, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${k}`).join('\r\n'));
      else if (verb === 'MAIL') say('250 2.1.0 Ok');
      else if (verb === 'RCPT') {
        const addr = /<(.*)>/.exec(line)?.[1] ?? '';
        const r = script.rcpt ? script.rcpt(addr) : '250 2.1.5 Ok';
        if (r.startsWith('2')) accepted.push(addr);
        say(r);
      } else if (verb === 'DATA') { inData = true; say('354 go ahead'); }
      else if (verb === 'QUIT') { say('221 2.0.0 Bye'); sock.end(); }
      else say('500 5.5.1 what');
    }
  });
}
