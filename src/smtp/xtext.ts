/**
 * RFC 3461 §4 xtext, the encoding of DSN's ENVID and ORCPT values: printable ASCII except `+`
 * and `=` stand for themselves, everything else is `+HH` in upper-case hex.
 */

import { isUtf8 } from 'node:buffer';

const HEX = /^[0-9A-F]{2}$/;

/**
 * Decode strictly; null when the text is not valid xtext. The octets are UTF-8 (an ORCPT of an
 * SMTPUTF8 address, RFC 6533), or taken one character per octet when they are not, so the value
 * relays as it came either way.
 */
export function decodeXtext(text: string): string | null {
  const octets: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (text[i] === '+') {
      const hex = text.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return null;
      octets.push(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) {
      octets.push(c);
    } else {
      return null;
    }
  }
  const buf = Buffer.from(octets);
  return isUtf8(buf) ? buf.toString('utf8') : buf.toString('latin1');
}

/** The text's UTF-8 octets as xtext (the inverse of decodeXtext for any text). */
export function encodeXtext(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 33 && byte <= 126 && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
