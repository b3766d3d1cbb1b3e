/**
 * RFC 3461 §4 xtext, the encoding of DSN's ENVID and ORCPT values: printable ASCII except `+`
 * and `=` stand for themselves, everything else is `+HH` in upper-case hex.
 */

const HEX = /^[0-9A-F]{2}$/;

/** Decode strictly; null when the text is not valid xtext. */
export function decodeXtext(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (text[i] === '+') {
      const hex = text.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return null;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) {
      out += text[i];
    } else {
      return null;
    }
  }
  return out;
}

export function encodeXtext(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'latin1')) {
    out += byte >= 33 && byte <= 126 && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
