// sifa — bytes for the pages' scripts (/verify: verify.js and gm.js; /service: service.js), loaded
// before them: base64 and hex, joining and comparing, SHA-256 by Web Crypto, and the block buffering
// and padding that the page's incremental SHA-256 and SM3 share. One copy, so the pages cannot drift.
"use strict";

const enc = new TextEncoder();
// Standard base64 (RFC 4648 §4) to bytes; atob is forgiving (padding optional, white space skipped):
// where the Python side refuses such forms, test the text with B64 first.
function b64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function sha256(data) { return new Uint8Array(await crypto.subtle.digest("SHA-256", data)); }

// A Merkle–Damgård hash of 64-byte blocks read as sixteen big-endian 32-bit words, padded with 1, zeros
// and the 64-bit big-endian bit length (SPEC: FIPS 180-4 §5.1.1, GB/T 32905 §5.2: the same for SHA-256
// and SM3). A subclass's compress(w, state) folds one block (w[0..15]; w is `words` long) into state.
class BlockHash {
  constructor(iv, words) {
    this.state = new Uint32Array(iv); this.w = new Uint32Array(words); this.buf = new Uint8Array(64);
    this.fill = 0; this.length = 0;
  }
  block(b, at) {
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      w[i] = (b[at + 4 * i] << 24) | (b[at + 4 * i + 1] << 16) | (b[at + 4 * i + 2] << 8) | b[at + 4 * i + 3];
    }
    this.compress(w, this.state);
  }
  update(data) {
    let at = 0;
    this.length += data.length;
    if (this.fill) {
      const take = Math.min(64 - this.fill, data.length);
      this.buf.set(data.subarray(0, take), this.fill); this.fill += take; at = take;
      if (this.fill < 64) return this;
      this.block(this.buf, 0); this.fill = 0;
    }
    for (; at + 64 <= data.length; at += 64) this.block(data, at);
    this.buf.set(data.subarray(at), 0); this.fill = data.length - at;
    return this;
  }
  digest() {
    const bits = this.length * 8;
    const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32)); view.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    const out = new Uint8Array(4 * this.state.length);
    const dv = new DataView(out.buffer);
    this.state.forEach((x, i) => dv.setUint32(4 * i, x));
    return out;
  }
}
