/**
 * The server's own name, as OpenSMTPD's getmailname() finds it: the first line of
 * `/etc/mail/mailname`, else the host name, made canonical when it has no domain part (so
 * MAILER-DAEMON and the banner name `host.example.org`, not `host`).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ServerNameSources {
  mailnameFile?: string;
  hostsFile?: string;
  host?: string;
}

export function findServerName(mailnameFile: string | ServerNameSources = '/etc/mail/mailname'): string {
  const o = typeof mailnameFile === 'string' ? { mailnameFile } : mailnameFile;
  try {
    const first = readFileSync(o.mailnameFile ?? '/etc/mail/mailname', 'utf8').split('\n')[0]?.trim();
    if (first) return first.toLowerCase();
  } catch {
    // no mailname file: fall back to the host name, as smtpd does
  }
  const host = (o.host ?? hostname()).toLowerCase();
  if (!host) return 'localhost';
  return host.includes('.') ? host : canonicalName(host, o.hostsFile ?? '/etc/hosts');
}

/**
 * getaddrinfo(AI_CANONNAME) through /etc/hosts, as glibc's `files` source answers it: the first
 * name of the first line that lists the short name. A name found nowhere stays as it is (smtpd
 * goes on with the non-canonical name too); DNS is not asked, as the daemon's resolver is not up.
 */
function canonicalName(short: string, hostsFile: string): string {
  let text: string;
  try {
    text = readFileSync(hostsFile, 'utf8');
  } catch {
    return short;
  }
  for (const raw of text.split('\n')) {
    const [address, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || !names.some((n) => n.toLowerCase() === short)) continue;
    return names[0]!.toLowerCase();
  }
  return short;
}
