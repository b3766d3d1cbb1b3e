/**
 * `show envelope` as smtpctl prints it: the `field: value` lines of OpenSMTPD's envelope file
 * (envelope.c, envelope_dump_buffer), in its order, so scripts written against smtpctl read
 * tsmtpd's envelopes. A field whose value is empty is left out, as envelope_ascii_dump does.
 */
import type { Envelope } from '../queue/envelope.js';

/** SMTPD_ENVELOPE_VERSION: the layout these lines follow. */
export const OPENSMTPD_ENVELOPE_VERSION = 3;

/** DSN_SUCCESS, DSN_FAILURE, DSN_DELAY, DSN_NEVER of smtpd.h: dsn-notify is their sum. */
const DSN_BITS = { SUCCESS: 0x01, FAILURE: 0x02, DELAY: 0x04, NEVER: 0x08 } as const;

/** ascii_dump_bounce_type's names. */
const BOUNCE_TYPE = { failure: 'failed', delay: 'delayed', success: 'delivered' } as const;

/** ascii_dump_mailaddr prints user@domain, so the null sender is `@`. */
function mailaddr(address: string): string {
  return address.includes('@') ? address : `${address}@`;
}

/** sa_to_text: `local` for the socket, the address for IPv4, `[address]` for IPv6. */
function sockaddr(clientAddress: string): string {
  return clientAddress.includes(':') ? `[${clientAddress}]` : clientAddress;
}

export function envelopeText(e: Envelope): string {
  const flags = [e.authUser ? 'authenticated' : '', e.bounce ? 'bounce' : ''].filter(Boolean).join(' ');
  const notify = (e.dsn.notify ?? []).reduce((sum, n) => sum + DSN_BITS[n], 0);
  // a report tsmtpd generated travels as mda or mta mail; smtpctl calls it a bounce, as show queue does
  const type = e.bounce ? 'bounce' : e.kind;
  const fields: [string, string | number | undefined][] = [
    ['version', OPENSMTPD_ENVELOPE_VERSION],
    ['dispatcher', e.action],
    ['tag', e.tag],
    ['type', type],
    ['smtpname', e.hostname],
    ['helo', e.helo],
    ['hostname', e.clientRdns],
    ['username', e.authUser],
    ['errorline', e.lastError],
    ['sockaddr', sockaddr(e.clientAddress)],
    ['sender', mailaddr(e.sender)],
    ['rcpt', mailaddr(e.origRcpt)],
    ['dest', mailaddr(e.rcpt)],
    ['ctime', e.createdAt],
    ['last-try', e.lastTry],
    ['last-bounce', e.lastWarn],
    ['ttl', e.ttl],
    ['retry', e.tries],
    ['flags', flags],
    ['dsn-notify', notify],
    ['dsn-ret', e.dsn.ret],
    ['dsn-envid', e.dsn.envid],
    ['dsn-orcpt', e.dsn.orcpt],
  ];
  if (e.bounce) fields.push(['bounce-type', BOUNCE_TYPE[e.bounce.kind]]);
  else if (e.kind === 'mda') {
    fields.push(
      ['mda-exec', e.mdaTarget?.kind === 'command' ? e.mdaTarget.value : undefined],
      ['mda-subaddress', e.subaddress],
      ['mda-user', e.user?.username],
    );
  }
  return fields
    .filter(([, v]) => v !== undefined && v !== '')
    // one field a line: a stray line break in a stored error must not start a field of its own
    .map(([k, v]) => `${k}: ${String(v).replace(/[\r\n]+/g, ' ')}\n`)
    .join('');
}
