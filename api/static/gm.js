// sifa — 国密 in the browser, for the /verify page: SM3 (GB/T 32905-2016) and SM2 signature
// verification with SM3 and a distinguishing ID (GB/T 32918.2-2016 §7, GM/T 0009-2012 §10).
// Written for sifa from the standards' text (no third-party code); licence: the project's,
// GPL-3.0-or-later (LICENSE). Verification only: nothing secret is handled here, so the BigInt
// arithmetic need not be constant-time. Checked in Chromium against the Python side and the
// standards' examples (tests/test_verify_page_gm.py). Needs bytes.js (BlockHash) loaded before it.
"use strict";

const GM = (() => {
  // --- SM3 ---
  const IV = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];
  const rotl = (x, n) => ((x << n) | (x >>> (32 - n))) >>> 0;
  const P0 = (x) => (x ^ rotl(x, 9) ^ rotl(x, 17)) >>> 0;
  const P1 = (x) => (x ^ rotl(x, 15) ^ rotl(x, 23)) >>> 0;
  // T_j <<< (j mod 32), precomputed (SPEC: GB/T 32905 §4.2 T_j = 79cc4519 for j < 16, 7a879d8a after)
  const TJ = new Uint32Array(64);
  for (let j = 0; j < 64; j++) TJ[j] = rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, j % 32);

  // Buffering and padding (SPEC: §5.2, as SHA-256's) are BlockHash's (bytes.js); this is the compression.
  class Sm3 extends BlockHash {
    constructor() { super(IV, 68); }
    compress(w, v) {
      // SPEC: §5.3.2 message expansion
      for (let j = 16; j < 68; j++) {
        w[j] = P1(w[j - 16] ^ w[j - 9] ^ rotl(w[j - 3], 15)) ^ rotl(w[j - 13], 7) ^ w[j - 6];
      }
      let [a, bb, c, d, e, f, g, h] = v;
      // SPEC: §5.3.3 compression function
      for (let j = 0; j < 64; j++) {
        const a12 = rotl(a, 12);
        const ss1 = rotl((a12 + e + TJ[j]) >>> 0, 7);
        const ss2 = ss1 ^ a12;
        const ff = j < 16 ? a ^ bb ^ c : (a & bb) | (a & c) | (bb & c);
        const gg = j < 16 ? e ^ f ^ g : (e & f) | (~e & g);
        const tt1 = (ff + d + ss2 + (w[j] ^ w[j + 4])) >>> 0;
        const tt2 = (gg + h + ss1 + w[j]) >>> 0;
        d = c; c = rotl(bb, 9); bb = a; a = tt1; h = g; g = rotl(f, 19); f = e; e = P0(tt2);
      }
      v[0] ^= a; v[1] ^= bb; v[2] ^= c; v[3] ^= d; v[4] ^= e; v[5] ^= f; v[6] ^= g; v[7] ^= h;
    }
  }
  const sm3 = (u8) => new Sm3().update(u8).digest();

  // --- SM2 (sm2p256v1, GB/T 32918.5-2017) ---
  const p = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn;
  const a = p - 3n;
  const b = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93n;
  const n = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123n;
  const gx = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7n;
  const gy = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0n;
  const DEFAULT_ID = new TextEncoder().encode("1234567812345678");
  const md = (x) => { const r = x % p; return r < 0n ? r + p : r; };
  const big = (u8) => u8.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const bytes32 = (x) => { const out = new Uint8Array(32); for (let i = 31; i >= 0; i--) { out[i] = Number(x & 0xffn); x >>= 8n; } return out; };
  function pow(x, e) {
    let r = 1n; x = md(x);
    for (; e > 0n; e >>= 1n) { if (e & 1n) r = (r * x) % p; x = (x * x) % p; }
    return r;
  }
  // Jacobian coordinates [X, Y, Z] with x = X/Z², y = Y/Z³; Z = 0 is the point at infinity.
  function dbl([X, Y, Z]) {
    if (Z === 0n || Y === 0n) return [1n, 1n, 0n];
    // a = -3: dbl-2001-b
    const delta = md(Z * Z), gamma = md(Y * Y), beta = md(X * gamma);
    const alpha = md(3n * (X - delta) * (X + delta));
    const X3 = md(alpha * alpha - 8n * beta);
    const Z3 = md((Y + Z) * (Y + Z) - gamma - delta);
    const Y3 = md(alpha * (4n * beta - X3) - 8n * gamma * gamma);
    return [X3, Y3, Z3];
  }
  function add(P, Q) {
    const [X1, Y1, Z1] = P, [X2, Y2, Z2] = Q;
    if (Z1 === 0n) return Q;
    if (Z2 === 0n) return P;
    const z1z1 = md(Z1 * Z1), z2z2 = md(Z2 * Z2);
    const u1 = md(X1 * z2z2), u2 = md(X2 * z1z1);
    const s1 = md(Y1 * Z2 * z2z2), s2 = md(Y2 * Z1 * z1z1);
    const h = md(u2 - u1), r = md(s2 - s1);
    if (h === 0n) return r === 0n ? dbl(P) : [1n, 1n, 0n];
    const hh = md(h * h), hhh = md(h * hh), v = md(u1 * hh);
    const X3 = md(r * r - hhh - 2n * v);
    const Y3 = md(r * (v - X3) - s1 * hhh);
    return [X3, Y3, md(Z1 * Z2 * h)];
  }
  // [k1]P + [k2]Q in one pass (Shamir's trick)
  function twoMul(k1, P, k2, Q) {
    const PQ = add(P, Q);
    let acc = [1n, 1n, 0n];
    for (let i = Math.max(k1.toString(2).length, k2.toString(2).length) - 1; i >= 0; i--) {
      acc = dbl(acc);
      const b1 = (k1 >> BigInt(i)) & 1n, b2 = (k2 >> BigInt(i)) & 1n;
      if (b1 && b2) acc = add(acc, PQ); else if (b1) acc = add(acc, P); else if (b2) acc = add(acc, Q);
    }
    return acc;
  }
  const onCurve = (x, y) => x >= 0n && x < p && y >= 0n && y < p && md(y * y - (x * x * x + a * x + b)) === 0n;

  // Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)   (GB/T 32918.2 §5.5)
  function za(pub, id = DEFAULT_ID) {
    const entl = Uint8Array.of((id.length * 8) >> 8, (id.length * 8) & 0xff);
    return new Sm3().update(entl).update(id).update(bytes32(a)).update(bytes32(b)).update(bytes32(gx))
      .update(bytes32(gy)).update(pub.subarray(1, 65)).digest();
  }

  // pub: 04‖x‖y (65 bytes); sig: r‖s (64 bytes). True only for a valid signature (GB/T 32918.2 §7.1 B1-B7).
  function sm2Verify(pub, message, sig, id = DEFAULT_ID) {
    if (pub.length !== 65 || pub[0] !== 4 || sig.length !== 64) return false;
    const x = big(pub.subarray(1, 33)), y = big(pub.subarray(33, 65));
    if (!onCurve(x, y)) return false;
    const r = big(sig.subarray(0, 32)), s = big(sig.subarray(32, 64));
    if (r < 1n || r >= n || s < 1n || s >= n) return false; // B1, B2
    const e = big(new Sm3().update(za(pub, id)).update(message).digest()); // B3, B4
    const t = (r + s) % n; // B5
    if (t === 0n) return false;
    const [X, , Z] = twoMul(s, [gx, gy, 1n], t, [x, y, 1n]); // B6
    if (Z === 0n) return false;
    const zi = pow(Z, p - 2n);
    const x1 = md(X * zi * zi);
    return (e + x1) % n === r; // B7
  }

  return { Sm3, sm3, za, sm2Verify, onCurve };
})();
