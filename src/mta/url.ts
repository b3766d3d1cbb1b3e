/**
 * Relay host URLs as smtpd.conf writes them: `[scheme://][label@]host[:port]`, host possibly a
 * bracketed IP literal; the scheme fixes the TLS policy and the default port.
 */

export type RelayScheme = 'smtp' | 'smtp+tls' | 'smtp+notls' | 'smtps' | 'lmtp';

export interface RelayUrl {
  scheme: RelayScheme;
  /** Credentials label looked up in the action's auth table. */
  label?: string;
  host: string;
  port: number;
}

const SCHEMES: Record<string, RelayScheme> = {
  smtp: 'smtp', 'smtp+tls': 'smtp+tls', 'smtp+notls': 'smtp+notls', smtps: 'smtps', lmtp: 'lmtp',
};

const HOST = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?))(?::(\d{1,5}))?$/;

export function parseRelayUrl(text: string): RelayUrl | { error: string } {
  const m = /^([a-z+]+):\/\/(.*)$/i.exec(text);
  const scheme = m ? SCHEMES[m[1]!.toLowerCase()] : 'smtp';
  if (!scheme) return { error: `unknown relay scheme in ${text}` };
  let rest = m ? m[2]! : text;
  let label: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    label = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!/^[\w.+-]{1,64}$/.test(label)) return { error: `bad credentials label in ${text}` };
    // credentials only ever travel over TLS
    if (scheme !== 'smtp+tls' && scheme !== 'smtps') return { error: `a label needs smtp+tls:// or smtps:// in ${text}` };
  }
  const h = HOST.exec(rest);
  if (!h) return { error: `bad relay host in ${text}` };
  const port = h[3] ? Number(h[3]) : scheme === 'smtps' ? 465 : scheme === 'lmtp' ? 0 : 25;
  if (scheme === 'lmtp' && !h[3]) return { error: `lmtp:// needs a port in ${text}` };
  if (port < 1 || port > 65535) return { error: `bad port in ${text}` };
  const url: RelayUrl = { scheme, host: (h[1] ?? h[2]!).toLowerCase(), port };
  return label ? { ...url, label } : url;
}
