/**
 * A read-only reader of Berkeley DB hash files (format version 8 and 9, Berkeley DB 4.x to 5.3),
 * the `db` files that OpenSMTPD's makemap and newaliases write on Linux through libdb's dbopen().
 * It walks the hash buckets (meta page spares), their chained pages and overflow pages, and
 * returns every key/data pair. Pure: bytes in, pairs out; a file it cannot read throws BdbError.
 *
 * Layout (Berkeley DB's dbinc/db_page.h and hash.h): page 0 is the hash meta page; every page
 * starts with a 26-byte header; item offsets follow it; items grow down from the page's end.
 */

export class BdbError extends Error {
  override name = 'BdbError';
}

const HASH_MAGIC = 0x061561;
const BTREE_MAGIC = 0x053162;
const PAGE_HEADER = 26;
const P_HASH_UNSORTED = 2;
const P_OVERFLOW = 7;
const P_HASHMETA = 8;
const P_HASH = 13;
const H_KEYDATA = 1;
const H_DUPLICATE = 2;
const H_OFFPAGE = 3;
const DBMETA_CHKSUM = 0x01;

/** __db_log2: the smallest i with 2^i >= n. */
function log2(n: number): number {
  let i = 0;
  for (let limit = 1; limit < n; limit *= 2) i++;
  return i;
}

class Reader {
  readonly pageSize: number;
  private readonly u32: (off: number) => number;
  private readonly u16: (off: number) => number;
  private visited = 0;

  constructor(private readonly buf: Buffer) {
    if (buf.length < 512) throw new BdbError('file too short for a Berkeley DB file');
    const le = buf.readUInt32LE(12);
    const be = buf.readUInt32BE(12);
    const magic = le === HASH_MAGIC || le === BTREE_MAGIC ? le : be;
    const little = magic === le;
    this.u32 = (o) => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    this.u16 = (o) => (little ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    if (magic === BTREE_MAGIC) throw new BdbError('a Berkeley DB btree file: OpenSMTPD reads only hash files (makemap -d hash)');
    if (magic !== HASH_MAGIC) {
      if (buf.readUInt32BE(0) === HASH_MAGIC || buf.readUInt32LE(0) === HASH_MAGIC) {
        throw new BdbError('a Berkeley DB 1.85 hash file (BSD makemap): only Berkeley DB 4 and 5 hash files are read');
      }
      throw new BdbError('not a Berkeley DB file');
    }
    const version = this.u32(16);
    if (version < 8 || version > 9) throw new BdbError(`hash format version ${version} (8 and 9 are read)`);
    this.pageSize = this.u32(20);
    if (this.pageSize < 512 || this.pageSize > 65536 || (this.pageSize & (this.pageSize - 1)) !== 0) throw new BdbError(`bad page size ${this.pageSize}`);
    if (buf[24] !== 0) throw new BdbError('encrypted Berkeley DB file');
    if (buf[25] !== P_HASHMETA) throw new BdbError('page 0 is not a hash meta page');
    if ((buf[26]! & DBMETA_CHKSUM) !== 0) throw new BdbError('Berkeley DB file with page checksums');
  }

  private page(pgno: number): number {
    const off = pgno * this.pageSize;
    if (pgno === 0 || off + this.pageSize > this.buf.length) throw new BdbError(`page ${pgno} is outside the file`);
    // each page of a sound file is read once: more reads than pages means a loop in a chain
    if (++this.visited > this.buf.length / this.pageSize) throw new BdbError('a page is chained twice (a loop in the file)');
    return off;
  }

  /** Every key/data pair, bucket by bucket. */
  pairs(): [Buffer, Buffer][] {
    const maxBucket = this.u32(72);
    const out: [Buffer, Buffer][] = [];
    for (let bucket = 0; bucket <= maxBucket; bucket++) {
      const spare = log2(bucket + 1);
      if (spare >= 32) throw new BdbError('bucket count out of range');
      let pgno = bucket + this.u32(96 + 4 * spare);
      while (pgno !== 0) {
        const off = this.page(pgno);
        const type = this.buf[off + 25];
        if (type !== P_HASH && type !== P_HASH_UNSORTED) throw new BdbError(`page ${pgno} is not a hash page (type ${type})`);
        this.items(off, out);
        pgno = this.u32(off + 16);
      }
    }
    return out;
  }

  /** Items alternate key, data; item i ends where item i-1 begins (the first at the page's end). */
  private items(off: number, out: [Buffer, Buffer][]): void {
    const entries = this.u16(off + 20);
    if (entries % 2 !== 0 || PAGE_HEADER + 2 * entries > this.pageSize) throw new BdbError('bad item count on a hash page');
    let end = this.pageSize;
    const item = (i: number): Buffer => {
      const start = this.u16(off + PAGE_HEADER + 2 * i);
      if (start < PAGE_HEADER + 2 * entries || start >= end) throw new BdbError('bad item offset on a hash page');
      const value = this.item(off + start, off + end);
      end = start;
      return value;
    };
    for (let i = 0; i < entries; i += 2) out.push([item(i), item(i + 1)]);
  }

  private item(start: number, end: number): Buffer {
    switch (this.buf[start]) {
      case H_KEYDATA:
        return this.buf.subarray(start + 1, end);
      case H_OFFPAGE:
        if (end - start < 12) throw new BdbError('short overflow reference');
        return this.overflow(this.u32(start + 4), this.u32(start + 8));
      case H_DUPLICATE: {
        // duplicates (never written by makemap): the first one, as a lookup without a cursor gets
        const len = this.u16(start + 1);
        if (start + 3 + len > end) throw new BdbError('bad duplicate item');
        return this.buf.subarray(start + 3, start + 3 + len);
      }
      default:
        throw new BdbError(`unknown hash item type ${this.buf[start]}`);
    }
  }

  /** An item too big for a page: a chain of overflow pages, each holding hf_offset bytes. */
  private overflow(pgno: number, total: number): Buffer {
    const parts: Buffer[] = [];
    let got = 0;
    while (pgno !== 0 && got < total) {
      const off = this.page(pgno);
      if (this.buf[off + 25] !== P_OVERFLOW) throw new BdbError(`page ${pgno} is not an overflow page`);
      const len = this.u16(off + 22);
      if (PAGE_HEADER + len > this.pageSize) throw new BdbError('bad overflow length');
      parts.push(this.buf.subarray(off + PAGE_HEADER, off + PAGE_HEADER + len));
      got += len;
      pgno = this.u32(off + 16);
    }
    if (got !== total) throw new BdbError('overflow chain shorter than its item');
    return Buffer.concat(parts);
  }
}

/** True when the bytes start like a Berkeley DB file (of any kind this module may name). */
export function looksLikeBdb(head: Buffer): boolean {
  if (head.length < 16) return false;
  const magics = [head.readUInt32LE(12), head.readUInt32BE(12), head.readUInt32LE(0), head.readUInt32BE(0)];
  return magics.some((m) => m === HASH_MAGIC || m === BTREE_MAGIC);
}

/** Every key/data pair of a Berkeley DB hash file, as stored (makemap's keys and values end in NUL). */
export function readBdbHash(buf: Buffer): [Buffer, Buffer][] {
  return new Reader(buf).pairs();
}
