/**
 * TLS for the smtp role: one secure context per pki, read once at start (a missing or unreadable
 * file is a startup error naming the pki), SNI choosing the pki whose certificate matches the
 * name the client asked for, and the server side of STARTTLS and SMTPS on an accepted socket.
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion } from 'node:tls';
import type { Config, Listener } from '../config/types.js';
import type { Keyring } from '../daemon/keyring.js';

export interface ListenerTls {
  context: SecureContext;
  sni(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
  requestCert: boolean;
}

export interface TlsDetails {
  version: string;
  cipher: string;
  bits: number;
  verified: boolean;
}

const VERSIONS: Record<string, SecureVersion> = { 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' };

/** OpenSMTPD's `protocols` (libtls syntax: `tlsv1.2,tlsv1.3`, `secure`, `default`, `all`) as Node's bounds. */
export function protocolBounds(protocols?: string): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const words = (protocols ?? 'secure').toLowerCase().split(/[,:\s]+/).filter(Boolean);
  const chosen = new Set<SecureVersion>();
  for (const w of words) {
    if (w === 'secure' || w === 'default' || w === 'all' || w === 'legacy') ['TLSv1.2', 'TLSv1.3'].forEach((v) => chosen.add(v as SecureVersion));
    else if (VERSIONS[w]) chosen.add(VERSIONS[w]!);
    else throw new Error(`unsupported TLS protocol: ${w}`);
  }
  const list = [...chosen].sort();
  return { minVersion: list[0]!, maxVersion: list[list.length - 1]! };
}

interface LoadedPki {
  name: string;
  context: SecureContext;
  cert: X509Certificate;
}

function loadPki(config: Config, keys: Keyring, name: string, listener: Listener, ca: Buffer | undefined): LoadedPki {
  const pair = keys.pkis[name];
  if (!pair) throw new Error(`pki ${name}: certificate and key are both required`);
  const { cert, key } = pair;
  const context = createSecureContext({
    cert, key, ...(ca ? { ca } : {}),
    ...protocolBounds(listener.protocols),
    ...(listener.ciphers ?? config.smtp.ciphers ? { ciphers: listener.ciphers ?? config.smtp.ciphers } : {}),
    // `pki NAME dhe auto`: tls_config_set_dheparams("auto"), DHE groups sized to the key; `none`
    // (the default) leaves the DHE suites off, as libtls does
    ...(config.pkis.get(name)?.dhe === 'auto' ? { dhparam: 'auto' } : {}),
  });
  return { name, context, cert: new X509Certificate(cert) };
}

/** The TLS setup of one listener, or null when it offers no TLS. */
export function listenerTls(config: Config, listener: Listener, serverName: string, keys: Keyring): ListenerTls | null {
  if (listener.tls === 'none' || listener.kind === 'socket') return null;
  const names = listener.pki.length ? listener.pki : [...config.pkis.keys()];
  if (names.length === 0) throw new Error(`listener at ${listener.where.file}:${listener.where.line}: TLS needs a pki`);
  const ca = listener.ca ? keys.cas[listener.ca] : undefined;
  const pkis = names.map((n) => loadPki(config, keys, n, listener, ca));
  // the default is the pki named like the listener's host name, else the first one listed
  const host = (listener.hostname ?? serverName).toLowerCase();
  const fallback = pkis.find((p) => p.name.toLowerCase() === host) ?? pkis[0]!;
  return {
    context: fallback.context,
    requestCert: listener.tlsVerify,
    sni(servername, cb) {
      const name = servername.toLowerCase();
      const hit = pkis.find((p) => p.name.toLowerCase() === name) ?? pkis.find((p) => p.cert.checkHost(name) !== undefined);
      cb(null, (hit ?? fallback).context);
    },
  };
}

/** The server side of a TLS handshake on an accepted socket; rejects on failure, hang-up or timeout. */
export function acceptTls(socket: Socket, tls: ListenerTls, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: tls.context,
      SNICallback: tls.sni,
      requestCert: tls.requestCert,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error('TLS handshake timeout'));
    }, timeoutMs);
    secure.once('secure', () => {
      clearTimeout(timer);
      const refused = tls.requestCert ? clientCertError(secure) : null;
      if (!refused) return resolve(secure);
      secure.destroy();
      reject(new Error(`client certificate refused: ${refused}`));
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    });
    // a client that hangs up without a word is no error to TLS, but it ends the handshake: the
    // session must not wait for the idle timeout holding its slot (issue 13 fuzz)
    secure.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed during the TLS handshake'));
    });
  });
}

/**
 * `verify` (smtp.c: tls_config_verify_client()): the client must present a certificate that
 * OpenSSL verified against the listener's ca (else the default roots). A TLSSocket made on an
 * accepted socket, outside a tls.Server, gets no such check from Node (tls.Server's
 * onServerSocketSecure makes it), so it is made here the same way: OpenSSL's verify result for
 * the handshake, which Node keeps on the socket's handle. Anything unexpected refuses.
 */
function clientCertError(secure: TLSSocket): string | null {
  const handle = (secure as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (typeof handle?.verifyError !== 'function') return 'no verification result';
  const err = handle.verifyError();
  if (err) return err.code ?? err.message;
  return secure.getPeerX509Certificate() ? null : 'no certificate';
}

/** tls_peer_cert_hash(): `SHA256:` and the certificate's digest in hex, or null without a certificate. */
export function peerCertHash(s: TLSSocket): string | null {
  const fp = s.getPeerCertificate()?.fingerprint256;
  return fp ? `SHA256:${fp.replaceAll(':', '').toLowerCase()}` : null;
}

export function tlsDetails(s: TLSSocket, verified: boolean): TlsDetails {
  const cipher = s.getCipher();
  const bits = (s.getCipher() as { standardName?: string; version?: string; name: string; bits?: number }).bits;
  return {
    version: s.getProtocol() ?? 'unknown',
    cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
    bits: bits ?? (/256/.test(cipher?.name ?? '') ? 256 : 128),
    // on a `verify` listener every session that got this far was verified (clientCertError)
    verified: verified,
  };
}
