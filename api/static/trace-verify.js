/*
 * Verifies an item's trace in the browser, as `authenticator trace verify` does offline.
 *
 * Pure checks, no DOM: RFC 9162 leaf hashes and inclusion proofs (a line-by-line port of
 * authenticator/ledger/merkle.py::root_from_inclusion_proof), the item's hash chain, RFC 8785
 * canonical entry bytes, the C2SP signed-note checkpoint with Ed25519 (WebCrypto), and the
 * witnesses' C2SP tlog-cosignatures on it.
 * The result names, per event, every check that failed, in the same order and with the same
 * meaning as the Python verifier, so both give the same verdict on the same trace.
 */
"use strict";

(function (global) {
  const HASH_SIZE = 32;
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: true });

  class VerifyError extends Error {}

  // Messages in the page's language: the page embeds its catalogue as JSON (id "i18n"); without
  // one (another page, Node) the English messages stand. "{name}" placeholders are filled in.
  const MESSAGES = (() => {
    try {
      const node = global.document && global.document.getElementById("i18n");
      return node ? JSON.parse(node.textContent) || {} : {};
    } catch (e) {
      return {};
    }
  })();
  function t(message, values) {
    const text = Object.prototype.hasOwnProperty.call(MESSAGES, message) ? MESSAGES[message] : message;
    return values ? text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)) : text;
  }

  // --- bytes and base64 ---------------------------------------------------------------------

  /** Standard padded base64, accepted only in its canonical form (as the Python side does). */
  function b64decode(text, what) {
    if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
      throw new VerifyError(t("{what} is not valid base64", { what }));
    }
    let bin;
    try {
      bin = atob(text);
    } catch (e) {
      throw new VerifyError(t("{what} is not valid base64", { what }));
    }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    if (b64encode(out) !== text) throw new VerifyError(t("{what} is not canonical base64", { what }));
    return out;
  }

  function b64encode(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }

  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  function equal(a, b) {
    if (!a || !b || a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // --- RFC 9162 Merkle math -----------------------------------------------------------------

  const LEAF_PREFIX = new Uint8Array([0]);
  const NODE_PREFIX = new Uint8Array([1]);

  function hashLeaf(data) {
    return sha256(concat(LEAF_PREFIX, data));
  }

  function hashChildren(left, right) {
    return sha256(concat(NODE_PREFIX, left, right));
  }

  function bitLength(n) {
    // n is a non-negative BigInt
    return n === 0n ? 0 : n.toString(2).length;
  }

  function popCount(n) {
    let c = 0;
    for (const ch of n.toString(2)) if (ch === "1") c++;
    return c;
  }

  /** The root implied by an inclusion proof (RFC 9162 §2.1.3.2); throws on a malformed proof. */
  async function rootFromInclusionProof(index, size, leafHash, proof) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || size < 0) {
      throw new VerifyError(t("index and size must be non-negative integers"));
    }
    if (index >= size) throw new VerifyError(t("index {index} is beyond the tree size {size}", { index, size }));
    if (leafHash.length !== HASH_SIZE) throw new VerifyError(t("leaf hash must be 32 bytes"));
    for (const h of proof) if (h.length !== HASH_SIZE) throw new VerifyError(t("proof hash must be 32 bytes"));
    const bi = BigInt(index);
    const inner = bitLength(bi ^ BigInt(size - 1));
    const border = popCount(bi >> BigInt(inner));
    if (proof.length !== inner + border) {
      throw new VerifyError(t("wrong proof length {got}, want {want}", { got: proof.length, want: inner + border }));
    }
    let seed = leafHash;
    for (let i = 0; i < inner; i++) {
      const bit = (bi >> BigInt(i)) & 1n;
      seed = bit === 0n ? await hashChildren(seed, proof[i]) : await hashChildren(proof[i], seed);
    }
    for (let i = inner; i < proof.length; i++) seed = await hashChildren(proof[i], seed);
    return seed;
  }

  async function verifyInclusion(index, size, leafHash, proof, root) {
    if (root.length !== HASH_SIZE) throw new VerifyError(t("root must be 32 bytes"));
    const calculated = await rootFromInclusionProof(index, size, leafHash, proof);
    if (!equal(calculated, root)) throw new VerifyError(t("inclusion proof does not lead to the expected root"));
  }

  async function chainInner(seed, proof, index) {
    for (let i = 0; i < proof.length; i++) {
      seed = ((index >> BigInt(i)) & 1n) === 0n ? await hashChildren(seed, proof[i]) : await hashChildren(proof[i], seed);
    }
    return seed;
  }

  async function chainInnerRight(seed, proof, index) {
    for (let i = 0; i < proof.length; i++) {
      if (((index >> BigInt(i)) & 1n) === 1n) seed = await hashChildren(proof[i], seed);
    }
    return seed;
  }

  async function chainBorderRight(seed, proof) {
    for (const h of proof) seed = await hashChildren(h, seed);
    return seed;
  }

  /** Check that the tree (size2, root2) extends (size1, root1) (RFC 9162 §2.1.4.2); throws if not. */
  async function verifyConsistency(size1, size2, proof, root1, root2) {
    if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < 0) {
      throw new VerifyError(t("sizes must be non-negative integers"));
    }
    if (size1 === 0) throw new VerifyError(t("a consistency proof from an empty tree proves nothing"));
    for (const h of proof) if (h.length !== HASH_SIZE) throw new VerifyError(t("proof hash must be 32 bytes"));
    if (size2 < size1) throw new VerifyError(t("size2 ({size2}) < size1 ({size1})", { size1, size2 }));
    if (size1 === size2) {
      if (proof.length) throw new VerifyError(t("size1 == size2 but the proof is not empty"));
      if (!equal(root1, root2)) throw new VerifyError(t("equal sizes but different roots"));
      return;
    }
    if (!proof.length) throw new VerifyError(t("empty consistency proof"));
    if (root1.length !== HASH_SIZE || root2.length !== HASH_SIZE) throw new VerifyError(t("roots must be 32 bytes"));
    const s1 = BigInt(size1);
    let inner = bitLength((s1 - 1n) ^ BigInt(size2 - 1));
    const border = popCount((s1 - 1n) >> BigInt(inner));
    const shift = bitLength(s1 & -s1) - 1;
    inner -= shift;
    let seed = proof[0];
    let start = 1;
    if (s1 === 1n << BigInt(shift)) {
      seed = root1;
      start = 0;
    }
    if (proof.length !== start + inner + border) {
      throw new VerifyError(t("wrong proof length {got}, want {want}", { got: proof.length, want: start + inner + border }));
    }
    const rest = proof.slice(start);
    const mask = (s1 - 1n) >> BigInt(shift);
    const hash1 = await chainBorderRight(await chainInnerRight(seed, rest.slice(0, inner), mask), rest.slice(inner));
    if (!equal(hash1, root1)) throw new VerifyError(t("consistency proof does not lead to the old root"));
    const hash2 = await chainBorderRight(await chainInner(seed, rest.slice(0, inner), mask), rest.slice(inner));
    if (!equal(hash2, root2)) throw new VerifyError(t("consistency proof does not lead to the new root"));
  }

  // --- RFC 8785 canonical JSON --------------------------------------------------------------

  /** RFC 8785: ECMAScript number and string forms, object keys sorted by UTF-16 code units. */
  function canonicalize(value) {
    if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new VerifyError(t("a number with no JSON form"));
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) return "[" + value.map(canonicalize).join(",") + "]";
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalize(value[k])).join(",") + "}";
  }

  const ENTRY_KEYS = "body,item,prev,time,type,v";

  /** Parse entry bytes; only the one canonical, well-formed encoding is accepted. */
  function parseEntry(bytes) {
    let text, value;
    try {
      text = dec.decode(bytes);
      value = JSON.parse(text);
    } catch (e) {
      throw new VerifyError(t("entry: not valid UTF-8 JSON"));
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new VerifyError(t("entry: not a JSON object"));
    }
    if (Object.keys(value).sort().join(",") !== ENTRY_KEYS) {
      throw new VerifyError(t("entry: wrong fields"));
    }
    if (canonicalize(value) !== text) throw new VerifyError(t("entry: not in canonical form (RFC 8785)"));
    if (value.v !== 1) throw new VerifyError(t("entry: unsupported version"));
    if (typeof value.type !== "string" || typeof value.item !== "string" || typeof value.time !== "string") {
      throw new VerifyError(t("entry: type, item and time must be strings"));
    }
    if (value.body === null || typeof value.body !== "object" || Array.isArray(value.body)) {
      throw new VerifyError(t("entry: body must be an object"));
    }
    if (value.prev !== null && !(typeof value.prev === "string" && /^[A-Za-z0-9+/]{43}=$/.test(value.prev))) {
      throw new VerifyError(t("entry: prev must be null or a base64 hash"));
    }
    return value;
  }

  // --- C2SP signed note and checkpoint ------------------------------------------------------

  /** Parse a C2SP verifier key `<name>+<hex key hash>+<base64(0x01 || key)>` and check its hash. */
  async function parseVerifierKey(vkey) {
    if (typeof vkey !== "string") throw new VerifyError(t("a verifier key is a string"));
    const first = vkey.indexOf("+");
    const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new VerifyError(t("a verifier key has the form <name>+<hex key hash>+<base64 key>"));
    const name = vkey.slice(0, first);
    const hashHex = vkey.slice(first + 1, second);
    if (/\s/.test(name)) throw new VerifyError(t("invalid key name in verifier key"));
    if (!/^[0-9a-fA-F]{8}$/.test(hashHex)) throw new VerifyError(t("the key hash of a verifier key is 8 hex digits"));
    const key = b64decode(vkey.slice(second + 1), "verifier key");
    if (key.length !== 33 || key[0] !== 1) throw new VerifyError(t("only Ed25519 verifier keys (0x01 and 32 bytes)"));
    const raw = key.slice(1);
    const keyHash = (await sha256(concat(enc.encode(name + "\n"), new Uint8Array([1]), raw))).slice(0, 4);
    if (hex(keyHash) !== hashHex.toLowerCase()) {
      throw new VerifyError(t("the key hash of the verifier key does not match its name and key"));
    }
    let cryptoKey;
    try {
      cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      throw new VerifyError(t("this browser cannot use the Ed25519 key ({why})", { why: e.message }));
    }
    return { name, keyHash, raw, cryptoKey };
  }

  /**
   * Open a signed note with one key: signatures of other keys are ignored (witnesses may
   * co-sign); a signature of this key that does not verify, or no signature of it, fails.
   */
  async function openNote(note, verifier) {
    if (typeof note !== "string") throw new VerifyError(t("a note is text"));
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new VerifyError(t("malformed note: no blank line before the signatures"));
    const text = note.slice(0, split + 1);
    const sigs = note.slice(split + 2);
    if (!sigs.endsWith("\n") || sigs.length === 1) throw new VerifyError(t("malformed note: no signature lines"));
    let verified = 0;
    for (const line of sigs.slice(0, -1).split("\n")) {
      if (!line.startsWith("\u2014 ")) throw new VerifyError(t("malformed note: a signature line does not start with an em dash"));
      const rest = line.slice(2);
      const space = rest.lastIndexOf(" ");
      if (space <= 0) throw new VerifyError(t("malformed note: bad signature line"));
      const name = rest.slice(0, space);
      const blob = b64decode(rest.slice(space + 1), "signature");
      if (blob.length < 5) throw new VerifyError(t("malformed note: signature too short"));
      if (name !== verifier.name || !equal(blob.slice(0, 4), verifier.keyHash)) continue;
      const sig = blob.slice(4);
      const ok =
        sig.length === 64 &&
        (await crypto.subtle.verify({ name: "Ed25519" }, verifier.cryptoKey, sig, enc.encode(text)));
      if (!ok) throw new VerifyError(t("the signature by {name} does not verify", { name: verifier.name }));
      verified++;
    }
    if (!verified) throw new VerifyError(t("no signature by the log key {name}", { name: verifier.name }));
    return text;
  }

  // --- C2SP tlog-cosignature: witnesses' timestamped Ed25519 cosignatures -------------------

  const COSIGNATURE_V1 = 4;
  const MAX_TIMESTAMP = (1n << 63n) - 1n;

  /** Parse a witness's verifier key `<name>+<hex key id>+<base64(0x04 || key)>` and check its id. */
  async function parseCosignatureKey(vkey) {
    if (typeof vkey !== "string") throw new VerifyError(t("a witness key is a string"));
    const first = vkey.indexOf("+");
    const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new VerifyError(t("a witness key has the form <name>+<hex key id>+<base64 key>"));
    const name = vkey.slice(0, first);
    const hashHex = vkey.slice(first + 1, second);
    if (/\s/.test(name)) throw new VerifyError(t("invalid key name in witness key"));
    if (!/^[0-9a-fA-F]{8}$/.test(hashHex)) throw new VerifyError(t("the key id of a witness key is 8 hex digits"));
    const key = b64decode(vkey.slice(second + 1), "witness key");
    if (key.length !== 33 || key[0] !== COSIGNATURE_V1) {
      throw new VerifyError(t("not a witness key: type 0x04 (Ed25519 cosignature/v1) and 32 bytes"));
    }
    const raw = key.slice(1);
    const keyHash = (await sha256(concat(enc.encode(name + "\n"), new Uint8Array([COSIGNATURE_V1]), raw))).slice(0, 4);
    if (hex(keyHash) !== hashHex.toLowerCase()) {
      throw new VerifyError(t("the key id of the witness key does not match its name and key"));
    }
    let cryptoKey;
    try {
      cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      throw new VerifyError(t("this browser cannot use the Ed25519 key ({why})", { why: e.message }));
    }
    return { name, keyHash, raw, cryptoKey, verifierKey: vkey };
  }

  /**
   * The cosignatures on a checkpoint note by the given witness keys (a list of
   * {name, verifierKey, timestamp}, in key order). Other lines are ignored; a line with a
   * given key's name and id that does not verify, or a second one, throws (as the Python side).
   * Each signs "cosignature/v1\ntime <t>\n" + the note text, as keyid || u64 t || signature.
   */
  async function verifyCosignatures(note, witnessKeys) {
    if (typeof note !== "string") throw new VerifyError(t("a note is text"));
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new VerifyError(t("malformed note: no blank line before the signatures"));
    const text = note.slice(0, split + 1);
    const sigs = note.slice(split + 2);
    if (!sigs.endsWith("\n") || sigs.length === 1) throw new VerifyError(t("malformed note: no signature lines"));
    const keys = [];
    for (const k of witnessKeys) keys.push(await parseCosignatureKey(k));
    const found = new Map();
    for (const line of sigs.slice(0, -1).split("\n")) {
      if (!line.startsWith("\u2014 ")) throw new VerifyError(t("malformed note: a signature line does not start with an em dash"));
      const rest = line.slice(2);
      const space = rest.lastIndexOf(" ");
      if (space <= 0) throw new VerifyError(t("malformed note: bad signature line"));
      const name = rest.slice(0, space);
      const blob = b64decode(rest.slice(space + 1), "signature");
      if (blob.length < 5) throw new VerifyError(t("malformed note: signature too short"));
      const key = keys.find((k) => k.name === name && equal(blob.slice(0, 4), k.keyHash));
      if (!key) continue;
      if (found.has(key.verifierKey)) throw new VerifyError(t("witness {name} cosigned the note more than once", { name }));
      let ok = blob.length === 4 + 8 + 64;
      let timestamp = 0n;
      if (ok) {
        timestamp = new DataView(blob.buffer, blob.byteOffset + 4, 8).getBigUint64(0);
        ok = timestamp <= MAX_TIMESTAMP;
      }
      if (ok) {
        const message = concat(enc.encode("cosignature/v1\ntime " + timestamp.toString() + "\n"), enc.encode(text));
        ok = await crypto.subtle.verify({ name: "Ed25519" }, key.cryptoKey, blob.slice(12), message);
      }
      if (!ok) throw new VerifyError(t("the cosignature of witness {name} does not verify", { name }));
      found.set(key.verifierKey, { name, verifierKey: key.verifierKey, timestamp: Number(timestamp) });
    }
    return keys.filter((k) => found.has(k.verifierKey)).map((k) => found.get(k.verifierKey));
  }

  /** A witness policy: at least `minWitnesses` of `witnesses` (verifier keys) cosigned the checkpoint. */
  async function checkWitnesses(note, policy) {
    const witnesses = (policy && Array.isArray(policy.witnesses) && policy.witnesses) || [];
    const required = (policy && Number.isSafeInteger(policy.minWitnesses) && policy.minWitnesses) || 0;
    const out = { ok: false, problems: [], by: [], required };
    if (required > witnesses.length) {
      out.problems.push(t("witnesses: the policy needs {required} witness keys but {given} were given", { required, given: witnesses.length }));
      return out;
    }
    try {
      out.by = await verifyCosignatures(note, witnesses);
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      out.problems.push(t("witnesses: {why}", { why: e.message }));
      return out;
    }
    if (out.by.length < required) {
      out.problems.push(
        t(
          "witnesses: {have} of the required {required} witnesses cosigned this checkpoint; a checkpoint made moments ago may not be cosigned yet",
          { have: out.by.length, required }
        )
      );
      return out;
    }
    out.ok = true;
    return out;
  }

  // --- the item map (authenticator/ledger/item_map.py, ported line by line) -----------------

  const MAP_PREFIX = "item-map ";

  function u64(n) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(n));
    return out;
  }

  function mapLeaf(key, head) {
    return sha256(concat(LEAF_PREFIX, key, u64(head.index), head.leafHash, u64(head.count)));
  }

  function keyBit(key, depth) {
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1;
  }

  /** The item-map root a proof implies (terminal: null = empty subtree, or {key, index, leafHash, count}). */
  async function mapRootFromProof(key, siblings, terminal) {
    const depth = siblings.length;
    if (depth > 256) throw new VerifyError(t("an item-map proof has at most 256 siblings"));
    let node;
    if (terminal === null) {
      node = new Uint8Array(HASH_SIZE);
    } else {
      if (terminal.key.length !== HASH_SIZE) throw new VerifyError(t("an item-map key is 32 bytes"));
      for (let d = 0; d < depth; d++) {
        if (keyBit(terminal.key, d) !== keyBit(key, d)) throw new VerifyError(t("the item-map leaf is not on the item's path"));
      }
      node = await mapLeaf(terminal.key, terminal);
    }
    for (let d = depth - 1; d >= 0; d--) {
      node = keyBit(key, d) ? await hashChildren(siblings[d], node) : await hashChildren(node, siblings[d]);
    }
    return node;
  }

  function parseItemHead(raw) {
    if (!raw || typeof raw !== "object" || !Array.isArray(raw.siblings)) throw new VerifyError(t("the trace has no item-head proof"));
    const siblings = raw.siblings.map((h) => b64decode(h, "item-head sibling"));
    if (siblings.some((h) => h.length !== HASH_SIZE)) throw new VerifyError(t("an item-head sibling is not 32 bytes"));
    let terminal = null;
    if (raw.terminal !== null) {
      const t = raw.terminal;
      if (!t || typeof t !== "object" || !Number.isSafeInteger(t.index) || !Number.isSafeInteger(t.count) || t.index < 0 || t.count < 1) {
        throw new VerifyError(t("malformed item-head terminal"));
      }
      terminal = { key: b64decode(t.key, "item-head key"), index: t.index, leafHash: b64decode(t.leaf_hash, "item-head leaf_hash"), count: t.count };
      if (terminal.leafHash.length !== HASH_SIZE) throw new VerifyError(t("item-head leaf_hash is not 32 bytes"));
    }
    return { siblings, terminal };
  }

  /**
   * What the checkpoint commits to for this item: null when the log holds no such item, else
   * {index, leafHash, count}. Throws when the proof does not lead to the checkpoint's map root.
   */
  async function committedHead(itemId, rawHead, mapRoot) {
    const key = await sha256(enc.encode(itemId));
    const { siblings, terminal } = parseItemHead(rawHead);
    const root = await mapRootFromProof(key, siblings, terminal);
    if (!equal(root, mapRoot)) throw new VerifyError(t("the item-head proof does not lead to the checkpoint's item-map root"));
    if (terminal === null || !equal(terminal.key, key)) return null;
    return terminal;
  }

  /** A C2SP tlog checkpoint body: origin, decimal size, base64 root, optional extension lines. */
  function parseCheckpoint(text) {
    const lines = text.split("\n");
    if (lines.length < 4 || lines[lines.length - 1] !== "") throw new VerifyError(t("malformed checkpoint"));
    const [origin, sizeText, rootText] = lines;
    if (!origin) throw new VerifyError(t("malformed checkpoint: empty origin"));
    if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw new VerifyError(t("malformed checkpoint: bad tree size"));
    const size = Number(sizeText);
    if (!Number.isSafeInteger(size)) throw new VerifyError(t("malformed checkpoint: tree size too large"));
    const root = b64decode(rootText, "checkpoint root");
    if (root.length !== HASH_SIZE) throw new VerifyError(t("malformed checkpoint: root is not 32 bytes"));
    let mapRoot = null;
    for (const line of lines.slice(3, -1)) {
      if (!line) throw new VerifyError(t("malformed checkpoint: empty extension line"));
      if (line.startsWith(MAP_PREFIX)) {
        if (mapRoot !== null) throw new VerifyError(t("malformed checkpoint: two item-map lines"));
        mapRoot = b64decode(line.slice(MAP_PREFIX.length), "item-map root");
        if (mapRoot.length !== HASH_SIZE) throw new VerifyError(t("malformed checkpoint: item-map root is not 32 bytes"));
      }
    }
    return { origin, size, root, rootB64: rootText, mapRoot };
  }

  /** Parse the checkpoint's body (without trusting it) from the note text. */
  function unsignedCheckpoint(note) {
    const split = typeof note === "string" ? note.lastIndexOf("\n\n") : -1;
    if (split < 0) throw new VerifyError(t("malformed note"));
    return parseCheckpoint(note.slice(0, split + 1));
  }

  // --- the trace ----------------------------------------------------------------------------

  /**
   * Check a trace against a verifier key. Returns
   * {ok, checkpoint: {ok, problems, origin, size}, events: [{position, index, type, entry, leafHash, ok, problems}]},
   * and `witnesses: {ok, problems, by, required}` when `policy` ({witnesses: [witness keys],
   * minWitnesses: k}) names witnesses: at least k of them must have cosigned the checkpoint.
   * Event checks run against the checkpoint's stated root even when its signature fails, so a
   * page can show exactly where the trace is broken; `ok` needs every check to hold.
   */
  async function verifyTrace(trace, verifierKey, oldNote, policy) {
    const report = { ok: false, checkpoint: { ok: false, problems: [] }, events: [], problems: [], notes: [] };
    if (!trace || typeof trace !== "object" || typeof trace.item_id !== "string") {
      report.problems.push(t("the trace has no item_id"));
      return report;
    }
    let cp = null;
    try {
      const verifier = await parseVerifierKey(verifierKey);
      const text = await openNote(trace.checkpoint, verifier);
      cp = parseCheckpoint(text);
      report.checkpoint = { ok: true, problems: [], origin: cp.origin, size: cp.size, keyName: verifier.name };
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      report.checkpoint.problems.push(t("checkpoint signature: {why}", { why: e.message }));
      try {
        cp = unsignedCheckpoint(trace.checkpoint);
        report.checkpoint.origin = cp.origin;
        report.checkpoint.size = cp.size;
      } catch (e2) {
        if (!(e2 instanceof VerifyError)) throw e2;
        cp = null;
      }
    }
    if (report.checkpoint.ok && policy && ((policy.witnesses || []).length || policy.minWitnesses)) {
      report.witnesses = await checkWitnesses(trace.checkpoint, policy);
    }
    if (typeof trace.verifier_key === "string" && trace.verifier_key !== verifierKey) {
      report.notes.push("the trace names another verifier key; only the key on this page was trusted");
    }
    const events = trace.events;
    if (!Array.isArray(events) || events.length === 0) {
      report.problems.push(t("the trace has no events"));
      return report;
    }
    let prevLeaf = null;
    let prevIndex = -1;
    for (let pos = 0; pos < events.length; pos++) {
      const raw = events[pos];
      const check = { position: pos, index: null, type: null, entry: null, leafHash: null, ok: true, problems: [] };
      const fail = (why) => {
        check.ok = false;
        check.problems.push(why);
      };
      report.events.push(check);
      if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
        fail(t("not an object"));
        prevLeaf = null;
        continue;
      }
      const index = raw.index;
      if (!Number.isSafeInteger(index) || index < 0) {
        fail(t("index is not a non-negative integer"));
        continue;
      }
      check.index = index;
      let data, claimed, proof;
      try {
        data = b64decode(raw.entry, "entry");
        claimed = b64decode(raw.leaf_hash, "leaf_hash");
        if (!Array.isArray(raw.inclusion_proof)) throw new VerifyError(t("inclusion_proof is not a list"));
        proof = raw.inclusion_proof.map((h) => b64decode(h, "inclusion_proof"));
        if (proof.some((h) => h.length !== HASH_SIZE)) throw new VerifyError(t("inclusion_proof holds a hash that is not 32 bytes"));
      } catch (e) {
        if (!(e instanceof VerifyError)) throw e;
        fail(e.message);
        prevLeaf = null;
        prevIndex = index;
        continue;
      }
      const leaf = await hashLeaf(data);
      check.leafHash = b64encode(leaf);
      if (!equal(leaf, claimed)) fail(t("leaf hash does not match the entry bytes"));
      if (cp === null) {
        fail(t("no checkpoint to check the inclusion proof against"));
      } else if (index >= cp.size) {
        fail(t("index is beyond the checkpoint's tree size {size}", { size: cp.size }));
      } else {
        try {
          await verifyInclusion(index, cp.size, leaf, proof, cp.root);
        } catch (e) {
          if (!(e instanceof VerifyError)) throw e;
          fail(t("inclusion proof: {why}", { why: e.message }));
        }
      }
      let entry;
      try {
        entry = parseEntry(data);
      } catch (e) {
        if (!(e instanceof VerifyError)) throw e;
        fail(e.message);
        prevLeaf = leaf;
        prevIndex = index;
        continue;
      }
      check.entry = entry;
      check.type = entry.type;
      if (entry.item !== trace.item_id) fail(t("entry is about {item}, not {expected}", { item: entry.item, expected: trace.item_id }));
      if (index <= prevIndex) fail(t("events are not in log order"));
      if (pos === 0 && entry.prev !== null) {
        fail(t("hash chain: the first event is not the item's first entry (earlier entries are missing)"));
      } else if (pos > 0 && (prevLeaf === null || entry.prev !== b64encode(prevLeaf))) {
        fail(t("hash chain: prev is not the leaf hash of the event before (an entry is missing or altered)"));
      }
      prevLeaf = leaf;
      prevIndex = index;
    }
    report.completeness = await checkCompleteness(trace, cp, report.events);
    if (typeof oldNote === "string") {
      report.consistency = await checkConsistency(trace, verifierKey, cp, report.checkpoint.ok, oldNote);
    }
    report.ok =
      report.checkpoint.ok &&
      report.problems.length === 0 &&
      report.events.every((e) => e.ok) &&
      report.completeness.ok &&
      (!report.consistency || report.consistency.ok) &&
      (!report.witnesses || report.witnesses.ok);
    return report;
  }

  /**
   * Does the trace end at the head the checkpoint commits to for this item? A trace cut
   * before its newest events fails here, naming how many are missing.
   */
  async function checkCompleteness(trace, cp, checks) {
    const out = { ok: false, problems: [], count: null, missing: 0 };
    if (cp === null) {
      out.problems.push(t("no checkpoint to check completeness against"));
      return out;
    }
    if (cp.mapRoot === null) {
      out.problems.push(t("this checkpoint does not commit to item heads, so the trace cannot be shown complete"));
      return out;
    }
    let head;
    try {
      head = await committedHead(trace.item_id, trace.item_head, cp.mapRoot);
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      out.problems.push(t("completeness: {why}", { why: e.message }));
      return out;
    }
    const shown = checks.length;
    const last = shown ? checks[shown - 1] : null;
    if (head === null) {
      out.problems.push(t("the log holds no events of this item, yet the trace shows {shown}", { shown }));
      return out;
    }
    out.count = head.count;
    if (head.count > shown) {
      const n = head.count - shown;
      out.missing = n;
      out.problems.push(n === 1 ? t("1 newer event of this item is not shown") : t("{n} newer events of this item are not shown", { n }));
      return out;
    }
    if (head.count !== shown || !last || last.index !== head.index || last.leafHash !== b64encode(head.leafHash)) {
      out.problems.push(t("the trace does not end at the item's committed head (index {index})", { index: head.index }));
      return out;
    }
    out.ok = true;
    return out;
  }

  /**
   * The trace's checkpoint against one this browser verified before: the same tree, or a
   * consistency proof that the new tree extends the old one (the log was not rewritten).
   */
  async function checkConsistency(trace, verifierKey, cp, cpOk, oldNote) {
    const out = { ok: false, problems: [], from: null, to: cp ? cp.size : null };
    let old;
    try {
      old = parseCheckpoint(await openNote(oldNote, await parseVerifierKey(verifierKey)));
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      out.problems.push(t("old checkpoint: {why}", { why: e.message }));
      return out;
    }
    out.from = old.size;
    if (!cp || !cpOk) {
      out.problems.push(t("consistency: the new checkpoint is not verified"));
      return out;
    }
    if (old.size > cp.size) {
      out.problems.push(t("the checkpoint seen before (size {old}) is newer than this one ({size}): the log shrank", { old: old.size, size: cp.size }));
      return out;
    }
    if (old.size === cp.size) {
      if (!equal(old.root, cp.root)) out.problems.push(t("consistency: same tree size, different root (the log forked)"));
      else out.ok = true;
      return out;
    }
    const c = trace.consistency;
    if (!c || typeof c !== "object" || c.from !== old.size || c.to !== cp.size) {
      out.problems.push(t("consistency: the trace has no consistency proof from size {old} to {size}", { old: old.size, size: cp.size }));
      return out;
    }
    try {
      if (!Array.isArray(c.hashes)) throw new VerifyError(t("consistency hashes is not a list"));
      const hashes = c.hashes.map((h) => b64decode(h, "consistency hashes"));
      await verifyConsistency(old.size, cp.size, hashes, old.root, cp.root);
      out.ok = true;
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      out.problems.push(t("consistency: {why}", { why: e.message }));
    }
    return out;
  }

  global.TraceVerify = {
    VerifyError,
    b64decode,
    b64encode,
    hashLeaf,
    hashChildren,
    rootFromInclusionProof,
    verifyInclusion,
    verifyConsistency,
    canonicalize,
    parseEntry,
    parseVerifierKey,
    openNote,
    parseCosignatureKey,
    verifyCosignatures,
    checkWitnesses,
    parseCheckpoint,
    mapRootFromProof,
    committedHead,
    verifyTrace,
    t,
  };
})(window);
