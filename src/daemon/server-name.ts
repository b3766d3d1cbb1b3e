/** The server's own name, as OpenSMTPD finds it: `/etc/mail/mailname`, else the host's FQDN. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export function findServerName(mailnameFile = '/etc/mail/mailname'): string {
  try {
    const first = readFileSync(mailnameFile, 'utf8').split('\n')[0]?.trim();
    if (first) return first.toLowerCase();
  } catch {
    // no mailname file: fall back to the host name, as smtpd does
  }
  return hostname().toLowerCase() || 'localhost';
}
