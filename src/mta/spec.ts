/**
 * From an envelope and its relay action to a relay spec: where to connect (MX of the domain or a
 * relay host URL), TLS policy, credentials, HELO and source. Specs with equal keys share
 * connections and batch their recipients.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DeliveryResult, Req, Res } from '../bus/messages.js';
import type { Config, RelayOptions } from '../config/types.js';
import type { Keyring } from '../daemon/keyring.js';
import type { Envelope } from '../queue/envelope.js';
import { protocolBounds } from '../smtp/tls.js';
import type { TlsClient, TlsPolicy } from './session.js';
import { parseRelayUrl, type RelayUrl } from './url.js';

export interface RelaySpec {
  key: string;
  /** MX delivery to this domain, or a relay host. */
  target: { kind: 'mx'; domain: string } | { kind: 'host'; host: string };
  port: number;
  tls: TlsPolicy;
  verify: boolean;
  ca?: string[];
  /** The action's client certificate, ciphers and protocols (mta_setup_dispatcher). */
  tlsClient?: TlsClient;
  lmtp: boolean;
  helo: string;
  auth?: { user: string; password: string };
  localAddress?: string;
  mailFrom?: string;
  /** `srs` on the action with an `srs key` set: forwarded mail leaves with a rewritten sender. */
  srsKey?: string;
  /** `backup [mx name]`: our own MX name, to use only MXs preferred over it. */
  backupOf?: string;
}

/** A lookup in a relay action's table, which the lka answers (the mta opens no table itself). */
export type RelayTableLookup = (req: Req<'mta.table.lookup'>) => Promise<Res<'mta.table.lookup'>>;

export interface SpecContext {
  config: Config;
  lookup: RelayTableLookup;
  serverName: string;
  /** Extra trust anchors (tests); the action's `ca` adds its file. */
  ca?: string[];
  /** The parent's copy of the `ca` files; read from disk when absent (roles built in tests). */
  keys?: Keyring;
}

async function value(sc: SpecContext, req: Req<'mta.table.lookup'>): Promise<string | undefined> {
  const res = await sc.lookup(req);
  return res.found ? res.value : undefined;
}

const temp = (detail: string, enhanced = '4.7.0'): DeliveryResult => ({ result: 'tempfail', enhanced, detail });

function domainOf(rcpt: string): string {
  return rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase();
}

/** The relay URL: the action's host, else the domain's entry in its `domain` table, else none (MX). */
async function relayUrl(r: RelayOptions, domain: string, sc: SpecContext): Promise<string | undefined | DeliveryResult> {
  if (r.host) return r.host;
  if (r.hostTable) {
    // `relay host <table>`: a relayhost list, fetched in turn (OpenSMTPD's table_fetch)
    const url = await value(sc, { table: r.hostTable, service: 'source' }).catch(() => undefined);
    return url ?? temp(`table ${r.hostTable} has no relay host`, '4.3.5');
  }
  if (!r.domainTable) return undefined;
  return value(sc, { table: r.domainTable, service: 'relayhost', key: domain });
}

/** `helo-src <table>`: the name for the source address in an addrname table, else the plain helo. */
async function heloFor(r: RelayOptions, localAddress: string | undefined, sc: SpecContext): Promise<string> {
  if (r.heloSrc && localAddress) {
    const name = await value(sc, { table: r.heloSrc, service: 'addrname', key: localAddress }).catch(() => undefined);
    if (name) return name;
  }
  return r.helo ?? sc.serverName;
}

function tlsFor(url: RelayUrl | null, r: RelayOptions): { tls: TlsPolicy; verify: boolean } | DeliveryResult {
  const want = r.tls !== 'opportunistic';
  const verify = r.tls !== 'no-verify';
  if (!url) return want ? { tls: 'required', verify } : { tls: 'opportunistic', verify: false };
  switch (url.scheme) {
    case 'smtp': return want ? { tls: 'required', verify } : { tls: 'opportunistic', verify: false };
    case 'smtp+tls': return { tls: 'required', verify };
    case 'smtps': return { tls: 'smtps', verify };
    case 'smtp+notls': return want ? temp('TLS required for relaying') : { tls: 'none', verify: false };
    case 'lmtp': return want ? temp('TLS required for relaying') : { tls: 'none', verify: false };
  }
}

async function credentials(url: RelayUrl | null, r: RelayOptions, sc: SpecContext): Promise<{ user: string; password: string } | undefined | DeliveryResult> {
  if (!url?.label) return undefined;
  if (!r.authTable) return temp('No auth table for relaying');
  const c = await value(sc, { table: r.authTable, service: 'credentials', key: url.label });
  const colon = c?.indexOf(':') ?? -1;
  if (!c || colon < 0) return temp(`no credentials for label ${url.label}`);
  return { user: c.slice(0, colon), password: c.slice(colon + 1) };
}

function caFor(r: RelayOptions, sc: SpecContext): string[] | undefined {
  const extra = sc.ca ?? [];
  const held = r.ca ? sc.keys?.cas[r.ca] : undefined;
  const decl = r.ca && !held ? sc.config.cas.get(r.ca) : undefined;
  const file = held ? [held.toString('utf8')] : decl ? [readFileSync(decl.cert, 'utf8')] : [];
  return extra.length + file.length ? [...extra, ...file] : undefined;
}

/**
 * mta_setup_dispatcher(): the action's `ciphers`, else `smtp ciphers`; its `protocols` (libtls's
 * default otherwise); its `pki` as the client certificate it presents.
 */
function tlsClientFor(r: RelayOptions, sc: SpecContext): TlsClient | undefined {
  const out: TlsClient = {};
  const ciphers = r.ciphers ?? sc.config.smtp.ciphers;
  if (ciphers) out.ciphers = ciphers;
  if (r.protocols) Object.assign(out, protocolBounds(r.protocols));
  if (r.pki) {
    const held = sc.keys?.pkis[r.pki];
    const decl = held ? undefined : sc.config.pkis.get(r.pki);
    if (held) Object.assign(out, held);
    else if (decl?.cert && decl.key) Object.assign(out, { cert: readFileSync(decl.cert), key: readFileSync(decl.key) });
  }
  return Object.keys(out).length ? out : undefined;
}

export async function relaySpec(e: Envelope, r: RelayOptions, sc: SpecContext): Promise<RelaySpec | DeliveryResult> {
  const domain = domainOf(e.rcpt);
  const urlText = await relayUrl(r, domain, sc);
  if (urlText !== undefined && typeof urlText !== 'string') return urlText;
  const url = urlText === undefined ? null : parseRelayUrl(urlText);
  if (url && 'error' in url) return temp(url.error, '4.3.5');
  const tls = tlsFor(url, r);
  if ('result' in tls) return tls;
  const auth = await credentials(url, r, sc);
  if (auth && 'result' in auth) return auth;
  const localAddress = r.src ?? (r.srcTable ? await value(sc, { table: r.srcTable, service: 'source' }) : undefined);
  const spec: RelaySpec = {
    key: '',
    target: url ? { kind: 'host', host: url.host } : { kind: 'mx', domain },
    port: url ? url.port : sc.config.mta.port,
    ...tls,
    lmtp: url?.scheme === 'lmtp',
    helo: await heloFor(r, localAddress, sc),
    ...(auth ? { auth } : {}),
    ...(localAddress ? { localAddress } : {}),
    ...(r.mailFrom ? { mailFrom: r.mailFrom } : {}),
    ...(r.srs && sc.config.srs?.key ? { srsKey: sc.config.srs.key } : {}),
    ...(r.backup && !url ? { backupOf: r.backupMx ?? sc.serverName } : {}),
  };
  const ca = caFor(r, sc);
  if (ca) spec.ca = ca;
  const tlsClient = tlsClientFor(r, sc);
  if (tlsClient) spec.tlsClient = tlsClient;
  // the credentials as looked up now, not just their label: sessions logged in with a password
  // that `tsmtpctl update table` has since replaced are not reused (a digest keeps it out of logs)
  const login = auth ? createHash('sha256').update(`${auth.user}\0${auth.password}`).digest('hex').slice(0, 16) : '';
  spec.key = JSON.stringify([spec.target, spec.port, spec.tls, spec.verify, spec.lmtp, spec.helo, url?.label ?? '', r.authTable ?? '', login, spec.localAddress ?? '', r.ca ?? '', spec.backupOf ?? '', r.pki ?? '', tlsClient?.ciphers ?? '', r.protocols ?? '']);
  return spec;
}
