// sifa — verify a file in the browser. The file never leaves this computer: it is hashed here
// (Web Crypto; files over WEBCRYPTO_MAX with the incremental SHA-256 below, since Web Crypto
// has no streaming digest), only the hash is sent, and the answer is checked here too:
// the leaf names the hash, the RFC 9162 inclusion proof leads to the checkpoint's root, and
// the checkpoint (a C2SP signed note) is signed by a court key pinned in this page.
// A sifa-receipt/2 receipt's disclosures are checked here against the proved sifa-leaf/2 leaf's
// commitments (docs/privacy.md); only those that open are shown, every other field as not disclosed.
// A 国密 court's log (docs/gm.md) hashes its tree with SM3 and signs with SM2: gm.js; its
// key's signature type says so, and the tree hash is always the one the pinned key names.
// The byte helpers are bytes.js's, loaded before this and gm.js.
"use strict";

const WEBCRYPTO_MAX = 256 * 1024 * 1024;
const CHUNK = 4 * 1024 * 1024;
const FILE_FIELDS = ["sha256", "contract_sha256", "receipt_sha256", "package_sha256"];
const TRUST = JSON.parse(document.getElementById("trust").textContent);
const LABELS = JSON.parse(document.getElementById("labels").textContent);
const RECEIPTS = ["sifa-receipt/1", "sifa-receipt/2"];

const TEXT = {
  zh: {
    title: "电子证据核验", intro: "选择或拖入一个文件，核验它是否在本法院存证、何时存证。",
    privacy: "文件不会离开您的电脑：只在本机计算它的 SHA-256 哈希，只把哈希发给法院。",
    file: "选择要核验的文件", drop: "也可以把文件拖到这里",
    receipt: "存证凭证（可选，.json 或 .tlog-proof；有凭证时完全离线核验）", go: "开始核验", hashing: "正在本机计算文件哈希…",
    footer: "核验在您的浏览器中完成：包含证明与检查点签名均由本页用 Web Crypto 检查，法院公钥固定在本页的信任列表中。",
    lang: "English", court: "本页信任的法院：",
    ok: "核验通过：该文件已存证", notRecorded: "未找到存证记录：本法院没有记录这个文件",
    bad: "核验失败：不能证明该文件已存证", noFile: "请先选择一个文件。",
    sha: "文件 SHA-256", recordId: "存证编号", recordedAt: "存证时间", courtName: "法院",
    item: "存证类型", height: "区块高度", leafHash: "交易哈希",
    cFile: "文件哈希与存证记录一致", cInclusion: "默克尔包含证明通向检查点的根哈希",
    cSignature: "检查点由法院公钥签名", cSealed: "记录已封存进签名检查点",
    cTerms: "凭证所列各项与已验证的数据一致", termBad: "与已验证的数据不符",
    // A failed check says what failed, never the positive sentence under a red cross.
    cFileBad: "文件哈希与存证记录不一致", cInclusionBad: "默克尔包含证明不能通向检查点的根哈希",
    cSignatureBad: "检查点不是由本页信任的法院公钥签名的", cSealedBad: "记录尚未封存进签名检查点",
    cTermsBad: "凭证所列各项与已验证的数据不一致", zone: "北京时间",
    cDisclosures: "凭证披露的各项与存证记录中的承诺一致", disclosureBad: "与承诺不符",
    cDisclosuresBad: "凭证披露的内容与存证记录中的承诺不一致",
    fields: "披露的内容（已核验）", notDisclosed: "未披露 / not disclosed",
    verifiedNothing: "没有任何内容通过验证。",
    unreadable: "凭证无法读取", offline: "（离线核验，依据存证凭证）",
    items: { DocumentUploaded: "上传文件", EvidenceSubmitted: "电子证据", ServiceRecorded: "电子送达",
             ContractRegistered: "电子合约", Archived: "归档", DocumentReceived: "接收卷宗文件",
             Opened: "立案", Catalogued: "编目", Transferred: "移送", Received: "接收卷宗", Retrieved: "调阅" },
  },
  en: {
    title: "Evidence verification", intro: "Choose or drop a file to check whether and when this court recorded it.",
    privacy: "The file never leaves your computer: only its SHA-256 is computed here, and only the hash is sent.",
    file: "Choose the file to verify", drop: "or drop it here",
    receipt: "Receipt (optional, .json or .tlog-proof; with one, verification is fully offline)", go: "Verify",
    hashing: "Hashing the file on this computer…",
    footer: "Verification happens in your browser: the inclusion proof and the checkpoint signature are checked "
      + "here with Web Crypto, against the court key pinned in this page.",
    lang: "中文", court: "Courts this page trusts: ",
    ok: "VALID: this file is recorded", notRecorded: "NOT RECORDED: this court has no record of this file",
    bad: "INVALID: the record could not be proved", noFile: "Choose a file first.",
    sha: "File SHA-256", recordId: "Record ID (存证编号)", recordedAt: "Recorded at (存证时间)", courtName: "Court",
    item: "Record type", height: "Tree size (区块高度)", leafHash: "Leaf hash (交易哈希)",
    cFile: "the file's hash is the one recorded", cInclusion: "the inclusion proof leads to the checkpoint's root",
    cSignature: "the checkpoint is signed by the court's key", cSealed: "the record is sealed in a signed checkpoint",
    cTerms: "the receipt's terms are what the verified data say", termBad: "not what the verified data say",
    cFileBad: "the file's hash is not the one recorded", cInclusionBad: "the inclusion proof does not lead to the checkpoint's root",
    cSignatureBad: "the checkpoint is not signed by a court key this page trusts",
    cSealedBad: "the record is not sealed in a signed checkpoint yet",
    cTermsBad: "the receipt's terms are not what the verified data say", zone: "Beijing time",
    cDisclosures: "the receipt's disclosures open the record's commitments", disclosureBad: "does not open its commitment",
    cDisclosuresBad: "the receipt's disclosures do not open the record's commitments",
    fields: "Disclosed fields (verified)", notDisclosed: "未披露 / not disclosed",
    verifiedNothing: "Nothing verified.",
    unreadable: "the receipt cannot be read", offline: "(offline, from the receipt)",
    items: { DocumentUploaded: "Document uploaded", EvidenceSubmitted: "Evidence submitted",
             ServiceRecorded: "Service recorded", ContractRegistered: "Contract registered", Archived: "Dossier archived",
             DocumentReceived: "Document received", Opened: "Dossier opened", Catalogued: "Catalogued",
             Transferred: "Dossier transferred", Received: "Dossier received", Retrieved: "Dossier read" },
  },
};
let lang = "zh";
let last = null; // the last result, re-rendered when the language changes
const t = (k) => TEXT[lang][k];

// --- tree hashing (enc, b64, hex, concat, equal, sha256 and BlockHash are bytes.js's) ---
// RFC 9162 §2.1 tree hashing with the log's hash: SHA-256 (Web Crypto), or SM3 on a GM log.
const TREE = {
  sha256: async (u8) => sha256(u8),
  sm3: async (u8) => GM.sm3(u8),
};
const leafHash = (h, data) => TREE[h](concat(Uint8Array.of(0), data));
const nodeHash = (h, l, r) => TREE[h](concat(Uint8Array.of(1), l, r));

// --- incremental SHA-256 (FIPS 180-4), for files Web Crypto would have to hold whole ---
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2]);
class Sha256 extends BlockHash {
  constructor() {
    super([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19], 64);
  }
  compress(w, h) {
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, bb, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
}

async function hashFile(file, progress) {
  const stream = new URLSearchParams(location.search).has("stream") || file.size > WEBCRYPTO_MAX;
  const whole = stream ? null : new Uint8Array(file.size);
  const h = stream ? new Sha256() : null;
  for (let at = 0; at < file.size || at === 0; at += CHUNK) {
    const chunk = new Uint8Array(await file.slice(at, at + CHUNK).arrayBuffer());
    if (stream) h.update(chunk); else whole.set(chunk, at);
    progress(Math.min(file.size, at + CHUNK), file.size);
    if (file.size === 0) break;
  }
  return hex(stream ? h.digest() : await sha256(whole));
}

// --- C2SP signed note, checkpoint, verifier keys ---
// Signature types: 0x01 Ed25519; 0xff ‖ DER(OID 1.2.156.10197.1.501 SM2-with-SM3) (ledger.note.SM2_SM3).
const SM2_TYPE = Uint8Array.of(0xff, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75);
function parseVkey(vkey) {
  // name+hexid+base64: a name never holds "+", base64 may
  const first = vkey.indexOf("+"), second = vkey.indexOf("+", first + 1);
  const [name, id, key] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const raw = b64(key);
  if (!name || !/^[0-9a-f]{8}$/.test(id)) throw new Error("bad key " + vkey);
  if (raw.length === 33 && raw[0] === 1) {
    return { name, id, type: raw.subarray(0, 1), pub: raw.subarray(1), alg: "ed25519", hash: "sha256" };
  }
  if (raw.length === SM2_TYPE.length + 65 && equal(raw.subarray(0, SM2_TYPE.length), SM2_TYPE)) {
    return { name, id, type: SM2_TYPE, pub: raw.subarray(SM2_TYPE.length), alg: "sm2", hash: "sm3" };
  }
  throw new Error("bad key " + vkey);
}
async function checkKeyId(k) {
  // SPEC: c2sp.org/signed-note key ID = SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4], SHA-256 for every type
  const want = hex((await sha256(concat(enc.encode(k.name), Uint8Array.of(0x0a), k.type, k.pub))).subarray(0, 4));
  if (want !== k.id) throw new Error("key id does not match key " + k.name);
}
// The tree hash of the log ``origin`` as its pinned key names it (SHA-256 when no pinned key is its).
function treeHashOf(origin) {
  for (const entry of TRUST.logs) {
    try { const k = parseVkey(entry.key); if (k.name === origin) return k.hash; } catch (e) { /* not this one */ }
  }
  return "sha256";
}
function parseNote(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("not a signed note");
  const body = text.slice(0, split + 1);
  const sigs = text.slice(split + 2).split("\n").filter((l) => l).map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error("bad signature line");
    const raw = b64(m[2]);
    return { name: m[1], id: hex(raw.subarray(0, 4)), sig: raw.subarray(4) };
  });
  return { body, sigs };
}
// The pinned key that signed the note; null unless one did. As in Python (ledger/note.py): every line
// of a pinned key must verify, so a forged line of the key beside its genuine one fails the note. A key
// signs only checkpoints of the sizes in its window; a replaced key's (until_size set) counts only with
// the receipt's key_consistency: a proof that a checkpoint the current key signed extends it.
async function checkSignature(note, size, consistency) {
  let signer = null;
  for (const entry of TRUST.logs) {
    if (size < (entry.from_size || 0) || (entry.until_size != null && size > entry.until_size)) continue;
    const k = parseVkey(entry.key);
    await checkKeyId(k);
    for (const s of note.sigs) {
      if (s.name !== k.name || s.id !== k.id) continue;
      let ok = false;
      if (s.sig.length === 64 && k.alg === "sm2") {
        ok = GM.sm2Verify(k.pub, enc.encode(note.body), s.sig);
      } else if (s.sig.length === 64) {
        const key = await crypto.subtle.importKey("raw", k.pub, { name: "Ed25519" }, false, ["verify"]);
        ok = await crypto.subtle.verify({ name: "Ed25519" }, key, s.sig, enc.encode(note.body));
      }
      if (!ok) return null;
      if (entry.until_size == null || (await extendedByCurrent(note, consistency))) signer = signer || entry;
    }
  }
  return signer;
}
async function extendedByCurrent(note, consistency) {
  try {
    if (!consistency || typeof consistency.checkpoint !== "string" || !Array.isArray(consistency.proof)) return false;
    const old = parseCheckpoint(note.body), later = parseNote(consistency.checkpoint);
    const cp = parseCheckpoint(later.body);
    if (cp.origin !== old.origin || cp.size < old.size) return false;
    const current = TRUST.logs.filter((e) => e.until_size == null && cp.size >= (e.from_size || 0));
    let signed = false;
    for (const entry of current) {
      const k = parseVkey(entry.key);
      await checkKeyId(k);
      for (const s of later.sigs) {
        if (s.name !== k.name || s.id !== k.id || s.sig.length !== 64) continue;
        const key = await crypto.subtle.importKey("raw", k.pub, { name: "Ed25519" }, false, ["verify"]);
        if (await crypto.subtle.verify({ name: "Ed25519" }, key, s.sig, enc.encode(later.body))) signed = true;
      }
    }
    return signed && (await consistent(treeHashOf(cp.origin), old.size, cp.size, old.root, cp.root,
      consistency.proof.map(b64)));
  } catch (e) { return false; }
}
// RFC 9162 §2.1.4.2
async function consistent(h, size1, size2, root1, root2, proof) {
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0 || size1 > size2) return false;
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : proof;
  if (path.length === 0) return false;
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(h, c, fr); sr = await nodeHash(h, c, sr);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(h, sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}
function parseCheckpoint(body) {
  const lines = body.split("\n");
  const size = Number(lines[1]);
  const root = b64(lines[2]);
  if (!lines[0] || !/^[0-9]+$/.test(lines[1]) || root.length !== 32) throw new Error("not a checkpoint");
  return { origin: lines[0], size, root };
}

// RFC 9162 §2.1.3.2
async function rootFromInclusion(h, index, size, leaf, proof) {
  if (index >= size) throw new Error("index beyond the tree");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(h, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await nodeHash(h, r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof too short");
  return r;
}

const UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

// One record: leaf bytes, its index, proof and the signed checkpoint it is proved against.
// `facts` holds only what verified: the court and 区块高度 once the checkpoint's signature did, the
// leaf's 存证编号, 存证时间, type and 交易哈希 once it is also proved included. Nothing else is shown.
async function checkRecord(sha, leafData, index, proof, checkpointText, consistency = null) {
  const checks = [];
  let leaf = {};
  try { leaf = JSON.parse(new TextDecoder().decode(leafData)); } catch { leaf = {}; }
  if (leaf === null || typeof leaf !== "object") leaf = {};
  const named = Array.isArray(leaf.files) && leaf.format === "sifa-leaf/2"
    ? leaf.files.some((f) => f && f.sha256 === sha)
    : FILE_FIELDS.some((f) => leaf.body && leaf.body[f] === sha);
  checks.push({ k: "cFile", ok: named });
  let cp = null, signer = null, included = false;
  try {
    const note = parseNote(checkpointText);
    cp = parseCheckpoint(note.body);
    signer = await checkSignature(note, cp.size, consistency);
  } catch (e) { signer = null; }
  const tree = treeHashOf(cp === null ? "" : cp.origin);
  const hash = await leafHash(tree, leafData);
  try {
    if (proof === null) throw new Error("not sealed");
    const root = await rootFromInclusion(tree, index, cp.size, hash, proof);
    included = equal(root, cp.root) && leaf.origin === cp.origin;
  } catch (e) { included = false; }
  checks.push({ k: proof === null ? "cSealed" : "cInclusion", ok: included });
  checks.push({ k: "cSignature", ok: signer !== null });
  const facts = {};
  if (signer !== null) {
    Object.assign(facts, { origin: cp.origin, court: signer.name || cp.origin, height: cp.size, tree });
  }
  if (signer !== null && included) {
    Object.assign(facts, { recordId: `${cp.origin}#${index}`, item: leaf.type, leafHash: hex(hash) });
    if (typeof leaf.time === "string" && UTC.test(leaf.time)) facts.recordedAt = leaf.time;
  }
  return { ok: checks.every((c) => c.ok), checks, facts, leaf, verified: signer !== null && included };
}

// RFC 8785 for the values a disclosure holds (texts, integers, booleans, null, lists, objects):
// ECMAScript's JSON.stringify is the scheme's serialisation of scalars; object keys sort by UTF-16 code units.
// A number the receipt did not write as an integer (2.0, 2e0) has no form: no leaf commits to one, and
// Python reads it as a float, which evidence.canonical refuses.
function canon(v) {
  if (v instanceof NotInteger) throw new Error("not an integer: " + v.source);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  if (v !== null && typeof v === "object") {
    return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

// H("sifa-commit/2" 0x00 || salt || utf8(path) || 0x00 || RFC8785(value)), hex (docs/privacy.md).
async function commitment(path, value, salt) {
  return hex(await sha256(concat(enc.encode("sifa-commit/2\0"), salt, enc.encode(path), Uint8Array.of(0),
    enc.encode(canon(value)))));
}

// Each disclosure must open the proved leaf's commitment of its path; returns the opened fields
// (path -> value) and the paths that did not open.
async function checkDisclosures(leaf, disclosures) {
  const opened = new Map(), bad = [];
  const commitments = leaf.format === "sifa-leaf/2" && leaf.commitments && typeof leaf.commitments === "object"
    ? leaf.commitments : {};
  for (const d of Array.isArray(disclosures) ? disclosures : [null]) {
    const path = d && typeof d.path === "string" ? d.path : "?";
    try {
      // standard base64 with its padding, as Disclosure.from_json reads it (atob alone takes it unpadded)
      if (typeof d.salt !== "string" || !B64.test(d.salt)) throw new Error("salt");
      const salt = b64(d.salt);
      const want = Object.prototype.hasOwnProperty.call(commitments, path) ? commitments[path] : null;
      if (salt.length !== 16 || want === null || opened.has(path)
        || await commitment(path, d.value, salt) !== want) throw new Error("mismatch");
      opened.set(path, d.value);
    } catch (e) { bad.push(path); }
  }
  return { opened, bad, paths: Object.keys(commitments).sort() };
}

function labelOf(path) {
  const pattern = path.split("/").map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? "*" : s)).join("/");
  return LABELS[pattern] || null;
}

// A receipt's terms are claims: each must be what the verified checkpoint and leaf say, and its
// log and tree size fields must be the checkpoint's (as sifa-verify checks them).
function checkTerms(receipt, rec) {
  const f = rec.facts, terms = receipt.terms || {};
  const want = { "存证编号": f.recordId, "区块高度": f.height, "交易哈希": f.leafHash, "存证时间": f.recordedAt };
  const bad = Object.keys(want).filter((k) => want[k] === undefined || terms[k] !== want[k]);
  if ((receipt.log || {}).origin !== f.origin) bad.push("log.origin");
  if (receipt.tree_size !== f.height) bad.push("tree_size");
  // the suite the receipt names must be its log's (the hashing above took the pinned key's, not this)
  const log = receipt.log || {};
  if (log.hash !== f.tree || log.signature !== (f.tree === "sm3" ? "sm2" : "ed25519")) bad.push("log.hash");
  rec.checks.push({ k: "cTerms", ok: bad.length === 0, terms: bad });
}

async function verifyOnline(sha) {
  const r = await fetch("/v1/verify", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sha256: sha }) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const answer = await r.json();
  if (!answer.recorded) return { sha, kind: "none", records: [] };
  const records = [];
  for (const rec of answer.records) {
    const proof = rec.inclusion_proof ? rec.inclusion_proof.map(b64) : null;
    records.push(await checkRecord(sha, b64(rec.leaf_data), rec.leaf_index, proof, answer.checkpoint));
  }
  return { sha, kind: records.some((x) => x.ok) ? "ok" : "bad", records };
}

// The receipt's JSON, each number that is not written as an integer (1.0, 1e0) kept as a NotInteger, so
// that it is no integer below: Python's json reads 1.0 as a float, and Receipt.from_json refuses it
// where it wants an integer, and a disclosure of it opens no commitment (canon refuses it).
class NotInteger { constructor(source) { this.source = source; } }
function parseReceipt(text) {
  let sourced = false;
  const doc = JSON.parse(text, (key, value, ctx) => {
    if (typeof value !== "number") return value;
    if (ctx === undefined || typeof ctx.source !== "string") return value;
    sourced = true;
    return /^-?(0|[1-9][0-9]*)$/.test(ctx.source) ? value : new NotInteger(ctx.source);
  });
  // A browser without JSON.parse source text: refuse any number written with a fraction or an exponent.
  if (!sourced && /[0-9][.eE]/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) throw new Error("number form");
  return doc;
}
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const isCount = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const MAX_DISCLOSURES = 10000;
const DISCLOSURE_KEYS = ["path", "salt", "value"];
// The receipt's form, as Receipt.from_json (ledger/receipt.py) checks it: integers >= 0 that are JSON
// integers, standard base64, at most 64 proof hashes of 32 bytes each; a sifa-receipt/2's disclosures a
// list of at most MAX_DISCLOSURES objects of exactly {path, value, salt}, path and salt texts.
function checkReceiptForm(r) {
  if (r === null || typeof r !== "object" || !RECEIPTS.includes(r.format)) throw new Error("format");
  const terms = r.terms;
  if (terms === null || typeof terms !== "object") throw new Error("terms");
  if (!isCount(r.leaf_index) || !isCount(r.tree_size) || !isCount(terms["区块高度"])) throw new Error("integers");
  if (typeof r.leaf_data !== "string" || !B64.test(r.leaf_data)) throw new Error("leaf_data");
  const proof = r.inclusion_proof;
  if (!Array.isArray(proof) || proof.length > 64) throw new Error("inclusion_proof");
  if (!proof.every((h) => typeof h === "string" && B64.test(h) && b64(h).length === 32)) throw new Error("hashes");
  if (typeof r.checkpoint !== "string") throw new Error("checkpoint");
  if (r.format !== "sifa-receipt/2") {
    if (Object.prototype.hasOwnProperty.call(r, "disclosures")) throw new Error("disclosures");
    return;
  }
  const ds = r.disclosures;
  if (!Array.isArray(ds) || ds.length > MAX_DISCLOSURES) throw new Error("disclosures");
  for (const d of ds) {
    if (d === null || typeof d !== "object" || Array.isArray(d) || d instanceof NotInteger
      || Object.keys(d).sort().join() !== DISCLOSURE_KEYS.join() || typeof d.path !== "string"
      || typeof d.salt !== "string") throw new Error("disclosure");
  }
}

async function verifyReceipt(sha, text) {
  let receipt;
  try {
    receipt = text.startsWith("c2sp.org/tlog-proof") ? fromTlogProof(text) : parseReceipt(text);
    if (receipt.format !== "tlog-proof") checkReceiptForm(receipt);
  } catch (e) {
    return { sha, kind: "bad", records: [], error: t("unreadable") };
  }
  let rec;
  try {
    rec = await checkRecord(sha, b64(receipt.leaf_data), receipt.leaf_index,
      receipt.inclusion_proof.map(b64), receipt.checkpoint, receipt.key_consistency || null);
  } catch (e) {
    return { sha, kind: "bad", records: [], error: t("unreadable") };
  }
  if (receipt.format === "tlog-proof") { /* no terms: the proof is the whole claim */ }
  else if (rec.verified) checkTerms(receipt, rec);
  else rec.checks.push({ k: "cTerms", ok: false, terms: [] }); // nothing verified to compare them with
  if (rec.verified && (receipt.format === "sifa-receipt/2" || rec.leaf.format === "sifa-leaf/2")) {
    const got = await checkDisclosures(rec.leaf, receipt.format === "sifa-receipt/2" ? receipt.disclosures : []);
    rec.checks.push({ k: "cDisclosures", ok: got.bad.length === 0, terms: got.bad, bad: "disclosureBad" });
    // shown only when every disclosure opened: a changed one must never be printed as verified
    if (got.bad.length === 0) rec.fields = got.paths.map((p) => ({ path: p, disclosed: got.opened.has(p),
      value: got.opened.get(p) }));
  }
  rec.ok = rec.ok && rec.checks.every((c) => c.ok);
  return { sha, kind: rec.ok ? "ok" : "bad", records: [rec], offline: true };
}

// A verified UTC time as people in China read it: "2026-11-23 00:30:00 北京时间 (UTC+8)".
function beijing(utc) {
  const d = new Date(Date.parse(utc) + 8 * 3600 * 1000);
  if (Number.isNaN(d.getTime())) return utc;
  return d.toISOString().replace("T", " ").slice(0, 19) + ` ${t("zone")} (UTC+8)`;
}

// A C2SP tlog-proof (what GET …/receipts/{v}/tlog-proof serves, saved as .tlog-proof): the leaf as
// its "extra", the index, the proof's hashes, a blank line, the signed checkpoint. As a receipt.
function fromTlogProof(text) {
  const cut = text.indexOf("\n\n");
  if (cut < 0) throw new Error("tlog-proof");
  const lines = text.slice(0, cut).split("\n");
  if (lines[0] !== "c2sp.org/tlog-proof@v1" || !lines[1].startsWith("extra ") || !/^index (0|[1-9]\d*)$/.test(lines[2])) {
    throw new Error("tlog-proof");
  }
  return { format: "tlog-proof", leaf_data: lines[1].slice(6), leaf_index: Number(lines[2].slice(6)),
    inclusion_proof: lines.slice(3), checkpoint: text.slice(cut + 2) };
}

// --- the page ---
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
function render(res) {
  last = res;
  const out = document.getElementById("result");
  out.replaceChildren();
  if (!res) return;
  if (res.message) { out.append(el("p", { class: "verdict none" }, res.message)); return; }
  const verdict = { ok: t("ok"), none: t("notRecorded"), bad: t("bad") }[res.kind];
  out.append(el("p", { class: `verdict ${res.kind}`, id: "verdict", "data-kind": res.kind }, verdict
    + (res.offline ? " " + t("offline") : "")));
  out.append(el("p", {}, `${t("sha")}: `, el("code", {}, res.sha)));
  if (res.error) out.append(el("p", {}, res.error));
  for (const r of res.records) {
    // Only verified facts are shown; one that did not verify is left out, never guessed.
    const f = r.facts;
    const item = f.item === undefined ? undefined : TEXT[lang].items[f.item] || f.item;
    const dl = el("dl");
    const at = f.recordedAt === undefined ? undefined : beijing(f.recordedAt);
    for (const [k, v] of [["recordId", f.recordId], ["recordedAt", at], ["courtName", f.court],
      ["item", item], ["height", f.height], ["leafHash", f.leafHash]]) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", { "data-fact": k }, t(k)), el("dd", {}, String(v)));
    }
    if (!dl.childElementCount) dl.append(el("dt", {}, t("verifiedNothing")));
    const ul = el("ul", { class: "checks" });
    for (const c of r.checks) {
      const said = c.ok ? t(c.k) : t(c.k + "Bad");
      const text = said + (c.ok || !c.terms || !c.terms.length ? ""
        : ` — ${c.terms.join("、")} ${t(c.bad || "termBad")}`);
      ul.append(el("li", { class: c.ok ? "ok" : "bad", "data-check": c.k, "data-terms": (c.terms || []).join(",") },
        text));
    }
    out.append(dl, ul);
    if (r.fields) {
      const fields = el("dl", { class: "fields", id: "fields" });
      for (const f of r.fields) {
        const name = labelOf(f.path) ? `${labelOf(f.path)} (${f.path})` : f.path;
        fields.append(el("dt", { "data-path": f.path }, name), el("dd", { "data-disclosed": String(f.disclosed) },
          f.disclosed ? (typeof f.value === "string" ? f.value : JSON.stringify(f.value)) : t("notDisclosed")));
      }
      out.append(el("h2", {}, t("fields")), fields);
    }
  }
}
function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title") + " · sifa";
  document.querySelectorAll("[data-t]").forEach((n) => { n.textContent = t(n.dataset.t); });
  const button = document.getElementById("lang");
  button.textContent = t("lang");
  button.lang = lang === "zh" ? "en" : "zh-CN";
  button.setAttribute("aria-label", t("lang"));
  document.getElementById("court").textContent = t("court") + TRUST.logs.map((l) => l.name || l.origin).join("、");
  if (last) render(last);
}

async function run(event) {
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  if (!file) { render({ message: t("noFile") }); return; }
  const receiptFile = document.getElementById("receipt").files[0];
  const box = document.getElementById("progress-box");
  const bar = document.getElementById("progress");
  box.hidden = false;
  let sha = "?";
  try {
    sha = await hashFile(file, (done, total) => { bar.value = total ? (100 * done) / total : 100; });
    box.hidden = true;
    render(receiptFile ? await verifyReceipt(sha, await receiptFile.text()) : await verifyOnline(sha));
  } catch (e) {
    box.hidden = true;
    render({ sha, kind: "bad", records: [], error: String(e.message || e) });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("form").addEventListener("submit", run);
  document.getElementById("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; translate(); });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) document.getElementById("file").files = e.dataTransfer.files;
  });
  translate();
  document.body.dataset.ready = "1";
});
