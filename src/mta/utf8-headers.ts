/**
 * Whether a message's header section carries octets beyond ASCII: an SMTPUTF8 message whose
 * addresses are ASCII still needs SMTPUTF8 of the next hop when its headers are UTF-8 (RFC 6532),
 * and without it must be bounced (RFC 6531 §3.2, X.6.9). Only the header section is read, and
 * only when the next hop lacks SMTPUTF8.
 */
import type { MessageBody } from '../queue/body-ref.js';

/** A header section longer than this is not read further (its beginning decides). */
const MAX_SCANNED = 1024 * 1024;

export async function headersNeedUtf8(body: MessageBody): Promise<boolean> {
  let atLineStart = true;
  let seen = 0;
  const stream = body.open();
  try {
    for await (const chunk of stream) {
      for (const octet of chunk as Buffer) {
        if (octet >= 0x80) return true;
        // a blank line ends the header section; CR before it does not count as content
        if (octet === 0x0a) {
          if (atLineStart) return false;
          atLineStart = true;
        } else if (octet !== 0x0d) {
          atLineStart = false;
        }
        if (++seen > MAX_SCANNED) return false;
      }
    }
    return false;
  } finally {
    stream.destroy();
  }
}
