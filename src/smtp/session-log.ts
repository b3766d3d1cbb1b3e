/**
 * The smtp session's log lines in OpenSMTPD 7.8's shapes (smtp_session.c), because admins'
 * tools (fail2ban filters, logwatch-style reports) parse them: `connected`, `failed-command`,
 * `bad-input`, `authentication`, `message` and `envelope`.
 */
import { log } from '../log.js';
import type { SessionFacts } from '../bus/messages.js';
import { formatReply, type Reply } from './reply.js';

/** ss_to_text(): `1.2.3.4`, `[::1]`, or `local` for the enqueue socket. */
export function addressText(facts: SessionFacts): string {
  if (facts.socket) return 'local';
  return facts.clientAddress.includes(':') ? `[${facts.clientAddress}]` : facts.clientAddress;
}

/** smtp_connected(), after the reverse lookup: `host=` is the name found, `<unknown>` when none. */
export function logConnected(id: string, facts: SessionFacts, serverName: string): void {
  const host = facts.socket ? serverName : (facts.rdns ?? '<unknown>');
  log('info', id, 'smtp', 'connected', { address: addressText(facts), host });
}

/**
 * What `failed-command` names as the command (smtp_reply): the line as sent, except that
 * credentials never reach a log. AUTH PLAIN with its response is `AUTH PLAIN (...)`, AUTH LOGIN's
 * lines are `(username)` and `(password)`, as OpenSMTPD's STATE_AUTH_* states name them.
 */
export function commandLabel(line: string): string {
  const m = /^AUTH\s+(\S+)\s+\S/i.exec(line);
  if (!m) return line;
  const mech = m[1]!.toUpperCase();
  return mech === 'LOGIN' ? 'AUTH LOGIN (username)' : `AUTH ${mech} (...)`;
}

/** smtp_reply(): every 4xx and 5xx reply is logged with the command it answers. */
export function logReply(id: string, command: string | null, reply: Reply): void {
  if (reply.code < 400) return;
  const result = formatReply(reply).split('\r\n', 1)[0]!;
  // SF_BADINPUT: the line could not be read as a command at all (too long)
  if (command === null) log('info', id, 'smtp', 'bad-input', { result: { quoted: result } });
  else log('info', id, 'smtp', 'failed-command', { command: { quoted: command }, result: { quoted: result } });
}

export function logAuthentication(id: string, user: string, result: 'pass' | 'fail' | 'error'): void {
  log('info', id, 'smtp', 'authentication', { user, result: result === 'pass' ? 'ok' : result === 'fail' ? 'permfail' : 'tempfail' });
}

/** smtp_tx_eom()'s two lines: the message, then one `envelope` per recipient given at RCPT. */
export function logAccepted(
  id: string,
  m: { msgid: string; size: number; rcpts: string[]; esmtp: boolean; sender: string; envelopes: { evpid: string; rcpt: string }[] },
): void {
  log('info', id, 'smtp', 'message', { msgid: m.msgid, size: m.size, nrcpt: m.rcpts.length, proto: m.esmtp ? 'ESMTP' : 'SMTP' });
  for (const rcpt of m.rcpts) {
    const key = rcpt.toLowerCase();
    const evp = m.envelopes.find((e) => e.rcpt.toLowerCase() === key);
    log('info', id, 'smtp', 'envelope', { evpid: evp?.evpid ?? '-', from: `<${m.sender}>`, to: `<${rcpt}>` });
  }
}
