// abseal's reference CDN edge function: ETSI TS 104 002 A/B variant
// selection at a CDN, with Web Crypto and the standard fetch API only (the
// shape Cloudflare Workers, Fastly Compute, Deno Deploy and Lambda@Edge
// accept). It answers a player's request exactly as abseal's Go edge
// (`edge serve`) does, but fetches plaintext from the CDN's cache in front
// of the Go edge in origin mode (`edge serve --origin-secret-file`), so the
// CDN caches both variants of every segment once and each session still
// gets its own A/B sequence.
//
// Per request:
//   1. route: /t/<token>/assets/<asset>/<object> (token in the path) or
//      /assets/<asset>/<object> with the token in the WMT or
//      Authorization: Bearer header; anything else 404, /origin/ paths
//      included (players never reach the origin's variant paths).
//   2. verify the WMT: a CWT in COSE_Mac0 (HMAC 256/256) or COSE_Sign1
//      (ES256), claims 300-307, exp and iat (30 s leeway), aud = the asset.
//      No token 401, a bad one 401, another asset's 403.
//   3. for a video segment: read the segment's WMPaceInfo (the CBOR
//      sidecar, or the WMPaceInfoEgress header of the origin's response),
//      take the session's pattern (direct mode: wmpattern, in clear,
//      A256GCM COSE_Encrypt0 or ECDH-SS+A128KW COSE_Encrypt; indirect mode:
//      derived from wmid for assets with the tardos-v1 session code), pick
//      the bit at the segment's position (most-significant bit first) and
//      fetch /origin/assets/<asset>/<rung>/<a|b>/seg-NNNNN.m4s.
//   4. everything else a player may fetch (playlists, inits, audio) comes
//      from its neutral origin path; the answer is `private, no-store` and
//      carries no header that tells the variants apart.
//
// The Go side is the reference: cdn/testdata/vectors.json (written by
// `go test ./cdn -run TestVectors -update`) holds tokens, patterns and
// paths both implementations are tested against, and cmd/edge's
// TestCDNEdgeFunction runs this function in front of nginx and the Go
// origin and compares every segment of several sessions with the Go edge.

import { decode, encode, Tag } from 'cbor2';

const te = new TextEncoder();
const EMPTY = new Uint8Array(0);
const CBOR = { preferMap: true, rejectDuplicateKeys: true, rejectStreaming: true, maxDepth: 8 };

// Claim keys (IANA CWT registry; ETSI TS 104 002 300-307).
export const Claim = Object.freeze({
  iss: 1, sub: 2, aud: 3, exp: 4, iat: 6, cti: 7,
  wmver: 300, wmvnd: 301, wmpatlen: 302, wmsegduration: 303, wmpattern: 304, wmid: 305, wmopid: 306, wmkeyver: 307,
});

// Token errors: the reasons the Go edge gives (delivery.Err*).
export const Reason = Object.freeze({
  malformed: 'malformed token',
  signature: 'token signature or MAC does not verify',
  unknownKey: 'token key id is unknown',
  expired: 'token expired',
  notYet: 'token issued in the future',
  claims: 'token claims are invalid',
});

export const MAX_TOKEN_SIZE = 8 << 10;
export const MAX_TOKEN_ID_SIZE = 64;
export const LEEWAY_SECONDS = 30;

// Headers of the Go edge in origin mode (edge/origin.go).
export const ORIGIN_SECRET_HEADER = 'Abseal-Origin-Secret';
export const SESSION_CODE_HEADER = 'Abseal-Session-Code';
export const PATTERN_LENGTH_HEADER = 'Abseal-Pattern-Length';
export const PACE_INFO_EGRESS_HEADER = 'WMPaceInfoEgress';

// The session code whose patterns this function derives in indirect mode.
export const CODE_TARDOS = 'tardos-v1';

// EdgeError is an answer to the player: status and a message safe to show
// (never a variant, never a token).
export class EdgeError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class TokenError extends Error {
  constructor(reason, detail) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.reason = reason;
  }
}

// ---- bytes ----

export function b64urlDecode(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    throw new TokenError(Reason.malformed, 'not base64url');
  }
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64urlEncode(b) {
  let bin = '';
  for (const x of b) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function hexDecode(s) {
  s = s.trim();
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new Error('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function hexEncode(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function pemBody(pem, type) {
  const m = pem.match(new RegExp(`-----BEGIN ${type}-----([^-]+)-----END ${type}-----`));
  if (!m) return null;
  const bin = atob(m[1].replace(/\s+/g, ''));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function isBytes(v) {
  return v instanceof Uint8Array;
}

function cborDecode(bytes, what) {
  try {
    return decode(bytes, CBOR);
  } catch (e) {
    throw new TokenError(Reason.malformed, `${what}: ${e.message}`);
  }
}

// ---- keys ----

// importTokenKey reads a token key file's contents as `edge serve` does
// (delivery.LoadKey): a PEM public key (ES256, verify only) or the hex of
// an HMAC secret of at least 32 bytes. The key id is the first 8 bytes of
// the SHA-256 of the DER public key, or of "abseal.wmt.kid.v1:" and the
// secret.
export async function importTokenKey(text) {
  const subtle = crypto.subtle;
  const spki = pemBody(text, 'PUBLIC KEY');
  if (spki) {
    const key = await subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const kid = new Uint8Array(await subtle.digest('SHA-256', spki)).slice(0, 8);
    return { kid: hexEncode(kid), alg: 'ES256', key };
  }
  if (/-----BEGIN/.test(text)) {
    throw new Error('token key: a PEM key that is not a PUBLIC KEY (the edge function only verifies: give it the public half, openssl ec -pubout)');
  }
  let secret;
  try {
    secret = hexDecode(text);
  } catch {
    throw new Error('token key: neither a PEM public key nor a hex HMAC secret');
  }
  if (secret.length < 32) throw new Error(`token key: HMAC secret of ${secret.length} bytes, want at least 32`);
  const kid = new Uint8Array(await subtle.digest('SHA-256', concat(te.encode('abseal.wmt.kid.v1:'), secret))).slice(0, 8);
  const key = await subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return { kid: hexEncode(kid), alg: 'HS256', key };
}

// importPatternKey reads a pattern key file's contents (delivery.LoadPatternKey):
// the hex of a 32-byte A256GCM key, or the edge's P-256 private key in
// PKCS#8 PEM for ECDH-SS+A128KW.
export async function importPatternKey(text) {
  const subtle = crypto.subtle;
  const pkcs8 = pemBody(text, 'PRIVATE KEY');
  if (pkcs8) {
    return { ecdh: await subtle.importKey('pkcs8', pkcs8, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']) };
  }
  if (/-----BEGIN EC PRIVATE KEY/.test(text)) {
    throw new Error('pattern key: a SEC 1 "EC PRIVATE KEY"; Web Crypto needs PKCS#8: openssl pkcs8 -topk8 -nocrypt -in KEY');
  }
  let k;
  try {
    k = hexDecode(text);
  } catch {
    throw new Error('pattern key: neither a PKCS#8 PEM private key nor hex');
  }
  if (k.length !== 32) throw new Error(`pattern key: ${k.length} bytes, want 32 (A256GCM)`);
  return { aes: await subtle.importKey('raw', k, 'AES-GCM', false, ['decrypt']) };
}

// ---- tokens ----

function protectedHeader(prot) {
  if (!isBytes(prot)) throw new TokenError(Reason.malformed, 'protected header');
  const h = cborDecode(prot, 'protected header');
  if (!(h instanceof Map)) throw new TokenError(Reason.malformed, 'protected header');
  const alg = h.get(1);
  if (typeof alg !== 'number') throw new TokenError(Reason.malformed, 'no algorithm');
  const kid = h.get(4);
  if (kid !== undefined && !isBytes(kid)) throw new TokenError(Reason.malformed, 'kid');
  return { alg, kid: kid ?? EMPTY };
}

const U8 = (v) => Number.isInteger(v) && v >= 0 && v <= 0xff;
const U16 = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffff;
const INT = (v) => Number.isSafeInteger(v) || typeof v === 'bigint';
const U64 = (v) => (Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n && v < 1n << 64n);
const STR = (v) => typeof v === 'string';

const claimTypes = new Map([
  [Claim.iss, STR], [Claim.sub, STR], [Claim.aud, STR], [Claim.exp, INT], [Claim.iat, INT], [Claim.cti, isBytes],
  [Claim.wmver, U8], [Claim.wmvnd, U8], [Claim.wmpatlen, U16],
  [Claim.wmsegduration, (v) => Array.isArray(v) && v.every(U64)], [Claim.wmpattern, isBytes],
  [Claim.wmid, U64], [Claim.wmopid, U64], [Claim.wmkeyver, U64],
]);

// parseClaims checks a token's claims (delivery.Claims.Validate) and
// returns them by name.
export function parseClaims(m) {
  if (!(m instanceof Map)) throw new TokenError(Reason.malformed, 'claims are not a map');
  for (const [k, check] of claimTypes) {
    if (m.has(k) && !check(m.get(k))) throw new TokenError(Reason.malformed, `claim ${k} has the wrong type`);
  }
  const c = {
    subject: m.get(Claim.sub) ?? '', audience: m.get(Claim.aud) ?? '',
    expiry: Number(m.get(Claim.exp) ?? 0), issuedAt: Number(m.get(Claim.iat) ?? 0), id: m.get(Claim.cti) ?? null,
    version: m.get(Claim.wmver) ?? 0, patternLen: m.get(Claim.wmpatlen) ?? 0, segDur: m.get(Claim.wmsegduration) ?? null,
    pattern: m.get(Claim.wmpattern) ?? null,
    wmid: m.has(Claim.wmid) ? BigInt(m.get(Claim.wmid)) : null,
    opId: BigInt(m.get(Claim.wmopid) ?? 0), keyVer: BigInt(m.get(Claim.wmkeyver) ?? 0),
  };
  const bad = (why) => { throw new TokenError(Reason.claims, why); };
  if (c.version !== 1) bad(`wmver ${c.version} is not 1`);
  if (c.patternLen === 0) bad('wmpatlen is 0');
  if (c.pattern === null && c.wmid === null) bad('wmpattern (direct mode) or wmid (indirect mode) must be present');
  if (c.id && c.id.length > MAX_TOKEN_ID_SIZE) bad('cti too long');
  if (c.expiry === 0 || c.issuedAt === 0) bad('exp and iat are required');
  if (c.segDur !== null && (c.segDur.length !== 2 || Number(c.segDur[1]) === 0)) bad('wmsegduration must be [ticks, timescale]');
  return c;
}

// verifyToken checks a base64url WMT with keys (importTokenKey results)
// at now (Unix seconds) and returns its claims; it throws a TokenError
// whose reason is one of Reason.
export async function verifyToken(token, keys, now) {
  if (token.length > MAX_TOKEN_SIZE) throw new TokenError(Reason.malformed, `${token.length} bytes`);
  const raw = b64urlDecode(token);
  let msg = cborDecode(raw, 'token');
  if (msg instanceof Tag && msg.tag === 61) msg = msg.contents; // CWT tag
  if (!(msg instanceof Tag) || (msg.tag !== 17 && msg.tag !== 18)) {
    throw new TokenError(Reason.malformed, 'not a COSE_Mac0 or COSE_Sign1');
  }
  const parts = msg.contents;
  if (!Array.isArray(parts) || parts.length !== 4 || !(parts[1] instanceof Map) || !isBytes(parts[2]) || !isBytes(parts[3])) {
    throw new TokenError(Reason.malformed, 'COSE structure');
  }
  const [prot, , payload, tag] = parts;
  const { alg, kid } = protectedHeader(prot);
  let ok;
  if (msg.tag === 17) {
    if (alg !== 5) throw new TokenError(Reason.malformed, `MAC algorithm ${alg} (want 5, HMAC 256/256)`);
    const k = keys.get(hexEncode(kid));
    if (!k) throw new TokenError(Reason.unknownKey);
    if (k.alg !== 'HS256') throw new TokenError(Reason.signature, 'key is not an HMAC key');
    ok = await crypto.subtle.verify('HMAC', k.key, tag, encode(['MAC0', prot, EMPTY, payload]));
  } else {
    if (alg !== -7) throw new TokenError(Reason.malformed, 'signature algorithm (want ES256)');
    const k = keys.get(hexEncode(kid));
    if (!k) throw new TokenError(Reason.unknownKey);
    if (k.alg !== 'ES256') throw new TokenError(Reason.signature, 'key is not an ES256 key');
    ok = tag.length === 64 &&
      await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, k.key, tag, encode(['Signature1', prot, EMPTY, payload]));
  }
  if (!ok) throw new TokenError(Reason.signature);
  const c = parseClaims(cborDecode(payload, 'claims'));
  if (now > c.expiry + LEEWAY_SECONDS) throw new TokenError(Reason.expired);
  if (c.issuedAt > now + LEEWAY_SECONDS) throw new TokenError(Reason.notYet);
  return c;
}

// ---- patterns ----

class PatternError extends TokenError {}

async function decryptEncrypt0(aesKey, sealed) {
  const m = cborDecode(sealed, 'wmpattern');
  if (!(m instanceof Tag) || m.tag !== 16) throw new PatternError(Reason.malformed, 'wmpattern is not a COSE_Encrypt0');
  const p = m.contents;
  if (!Array.isArray(p) || p.length !== 3 || !(p[1] instanceof Map) || !isBytes(p[2])) throw new PatternError(Reason.malformed, 'COSE_Encrypt0');
  const { alg } = protectedHeader(p[0]);
  if (alg !== 3) throw new PatternError(Reason.malformed, `pattern encryption algorithm ${alg} (supported: 3, A256GCM)`);
  const iv = p[1].get(5);
  if (!isBytes(iv) || iv.length !== 12) throw new PatternError(Reason.malformed, 'COSE_Encrypt0 IV');
  if (!aesKey) throw new PatternError('pattern key', 'no A256GCM pattern key');
  try {
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv, additionalData: encode(['Encrypt0', p[0], EMPTY]) }, aesKey, p[2]));
  } catch {
    throw new PatternError('pattern key', 'encrypted wmpattern does not open with the pattern key');
  }
}

function ecdhTag(sealed) {
  try {
    // cbor2 counts tags as levels: a COSE_Encrypt with its recipient's
    // static key is 9 deep.
    const m = decode(sealed, { ...CBOR, maxDepth: 16 });
    return m instanceof Tag && (m.tag === 96 || m.tag === 992) ? m : null;
  } catch {
    return null;
  }
}

// decryptECDH opens an ECDH-SS + A128KW COSE_Encrypt (delivery/ecdh.go).
async function decryptECDH(edgeKey, m) {
  const subtle = crypto.subtle;
  const p = m.contents;
  if (!Array.isArray(p) || p.length !== 4 || !(p[1] instanceof Map) || !isBytes(p[2]) || !Array.isArray(p[3])) {
    throw new PatternError(Reason.malformed, 'COSE_Encrypt');
  }
  const [prot, unprot, ct, recipients] = p;
  if (protectedHeader(prot).alg !== 1) throw new PatternError(Reason.malformed, 'content algorithm (supported: A128GCM)');
  const iv = unprot.get(5);
  if (!isBytes(iv) || iv.length !== 12) throw new PatternError(Reason.malformed, 'COSE_Encrypt IV');
  if (!edgeKey) throw new PatternError('pattern key', 'no ECDH pattern key');
  const aad = encode([m.tag === 992 ? 'Enveloped' : 'Encrypt', prot, EMPTY]);
  for (const r of recipients) {
    try {
      if (!Array.isArray(r) || r.length !== 3 || !(r[1] instanceof Map) || !isBytes(r[2])) continue;
      if (protectedHeader(r[0]).alg !== -32) continue;
      const sk = r[1].get(-2);
      if (!(sk instanceof Map) || sk.get(1) !== 2 || sk.get(-1) !== 1 || sk.get(-2)?.length !== 32 || sk.get(-3)?.length !== 32) continue;
      const sender = await subtle.importKey('raw', concat([4], sk.get(-2), sk.get(-3)), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
      const secret = await subtle.deriveBits({ name: 'ECDH', public: sender }, edgeKey, 256);
      const ikm = await subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
      const info = encode([-3, [], [], [128, r[0]]]);
      const kek = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: EMPTY, info }, ikm, 128);
      const kw = await subtle.importKey('raw', kek, 'AES-KW', false, ['unwrapKey']);
      const cek = await subtle.unwrapKey('raw', r[2], kw, 'AES-KW', 'AES-GCM', false, ['decrypt']);
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: aad }, cek, ct));
    } catch {
      continue;
    }
  }
  throw new PatternError('pattern key', 'encrypted wmpattern does not open with the pattern key');
}

// HMAC-SHA256(key, label ‖ 0x00 ‖ data): forensic/code.go's prf.
async function prf(key, label, data = EMPTY) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, concat(te.encode(label), [0], data)));
}

// The first n bytes of AES-256-CTR under key from a zero counter block.
async function keystream(key, n) {
  const k = await crypto.subtle.importKey('raw', key, 'AES-CTR', false, ['encrypt']);
  return new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 128 }, k, new Uint8Array(n)));
}

// The bias levels of forensic.Levels (thresholds out of 65,536).
export const LEVELS = Object.freeze([
  7736, 10350, 13264, 16441, 19836, 23405, 27099, 30870,
  34666, 38437, 42131, 45700, 49095, 52272, 55186, 57800,
]);

// deriveAssetKey is watermark.DeriveAssetKey: HKDF-SHA256 of the watermark
// master key with info "abseal.wm.asset:<asset>".
export async function deriveAssetKey(master, assetId) {
  if (master.length < 16) throw new Error('watermark master key shorter than 16 bytes');
  const ikm = await crypto.subtle.importKey('raw', master, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: EMPTY, info: te.encode('abseal.wm.asset:' + assetId) }, ikm, 256));
}

function u64(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}

// TardosCode is forensic.Code: an asset's position biases and its
// sessions' codewords (tardos-v1).
export class TardosCode {
  static async create(master, assetId, n, opId) {
    if (n < 1 || n > 65535) throw new Error(`${n} positions, want 1..65535`);
    const c = new TardosCode();
    c.key = await prf(await deriveAssetKey(master, assetId), 'abseal forensic key v1');
    c.opId = BigInt(opId);
    const stream = await keystream(await prf(c.key, 'bias'), (n + 1) >> 1);
    c.levels = new Uint8Array(n);
    for (let i = 0; i < n; i++) c.levels[i] = (i % 2 ? stream[i >> 1] >> 4 : stream[i >> 1]) & 15;
    return c;
  }

  // pattern returns session wmid's codeword, one bit (0 or 1) per position.
  async pattern(wmid) {
    const n = this.levels.length;
    const u = await keystream(await prf(this.key, 'codeword', concat(u64(this.opId), u64(wmid))), 2 * n);
    const bits = new Uint8Array(n);
    for (let i = 0; i < n; i++) bits[i] = ((u[2 * i] << 8) | u[2 * i + 1]) < LEVELS[this.levels[i]] ? 1 : 0;
    return bits;
  }
}

// packBits packs 0/1 bits MSB first (delivery.PackBits).
export function packBits(bits) {
  const out = new Uint8Array((bits.length + 7) >> 3);
  bits.forEach((b, i) => { if (b & 1) out[i >> 3] |= 0x80 >> (i % 8); });
  return out;
}

// variant is delivery.Variant: "b" when the packed pattern's bit at
// position mod patLen is 1, else "a"; "a" when sequencing is off or the
// position is -1.
export function variant(pattern, patLen, position, sequencing = true) {
  if (!sequencing || position < 0 || patLen <= 0 || pattern.length * 8 < patLen) return 'a';
  const p = position % patLen;
  return (pattern[p >> 3] >> (7 - (p % 8))) & 1 ? 'b' : 'a';
}

// ---- the layout (asset/layout.go) ----

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RESERVED = new Set(['hls', 'dash', 'assets', 'manifest.json', 'WMPaceInfo', 'master']);
export const AUDIO_RUNG = 'audio';

function validRung(r) {
  return ID.test(r) && !RESERVED.has(r);
}

export function segmentFile(n) {
  return `seg-${String(n).padStart(5, '0')}.m4s`;
}

function segmentNumber(file) {
  const m = /^seg-([0-9]+)\.m4s$/.exec(file);
  if (!m) return 0;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 && segmentFile(n) === file ? n : 0;
}

// parsePlayerObject reads the asset-relative path of an object a player
// may fetch (asset.Parse of the neutral paths): playlists, inits and
// neutral segments; null for anything else (variant paths, sidecars, the
// asset manifest, what is not in the layout).
export function parsePlayerObject(p) {
  const parts = p.split('/');
  if (parts.some((s) => s === '' || s === '.' || s === '..')) return null;
  if (parts.length !== 2) return null;
  const [dir, file] = parts;
  if (dir === 'hls' && file === 'master.m3u8') return { kind: 'hls' };
  if (dir === 'hls' && file.endsWith('.m3u8')) {
    const rung = file.slice(0, -'.m3u8'.length);
    return validRung(rung) ? { kind: 'hls', rung } : null;
  }
  if (dir === 'dash') return file === 'manifest.mpd' ? { kind: 'dash' } : null;
  if (!validRung(dir)) return null;
  if (file === 'init.mp4') return { kind: 'init', rung: dir };
  const n = segmentNumber(file);
  return n ? { kind: 'segment', rung: dir, number: n } : null;
}

// ---- WMPaceInfo ----

// parsePaceInfo reads a WMPaceInfo (cmaf.ParsePaceInfo): version 1, the
// position in -1..32767.
export function parsePaceInfo(bytes) {
  let m;
  try {
    m = decode(bytes, { ...CBOR, maxDepth: 4 });
  } catch {
    return null;
  }
  if (!(m instanceof Map) || m.get(1) !== 1) return null;
  const pos = m.has(6) ? m.get(6) : 0;
  return Number.isInteger(pos) && pos >= -1 && pos <= 32767 ? { position: pos } : null;
}

// ---- the handler ----

// notFound is the answer to an origin's 404: the origin's own "no such
// asset" (the Go edge's answer for an asset that is not published), or
// otherwise.
async function notFound(resp, otherwise) {
  let body = '';
  try {
    body = (await resp.text()).trim();
  } catch {
    // the body is not needed
  }
  return body === 'no such asset' ? new EdgeError(404, 'no such asset') : otherwise;
}

const CORS_METHODS = 'GET, HEAD';
const CORS_HEADERS = 'Authorization, WMT, Range';
const CORS_EXPOSE = 'Content-Length, Content-Range, Accept-Ranges';
const PASS_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges'];

function normalizeOrigins(list) {
  const set = new Set();
  let any = false;
  for (let o of list ?? []) {
    o = o.trim();
    if (o === '') continue;
    if (o === '*') {
      any = true;
      continue;
    }
    let u;
    try {
      u = new URL(o);
    } catch {
      u = null;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password ||
        (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || !/^https?:\/\/[^/]+\/?$/.test(o)) {
      throw new Error(`allowed origin ${JSON.stringify(o)}: want scheme://host[:port] (http or https, no path) or *`);
    }
    set.add(u.origin.toLowerCase());
  }
  return { set, any };
}

// createEdge prepares the keys of config and returns the request handler,
// (request: Request) => Promise<Response>. config:
//   origin         base URL of the CDN's cached origin (required): the Go
//                  edge in origin mode, usually through the CDN's cache
//   originSecret   sent in Abseal-Origin-Secret to the origin (optional:
//                  leave it to the CDN's origin configuration)
//   tokenKeys      token key files' contents (required, at least one)
//   patternKey     pattern key file's contents (encrypted direct-mode patterns)
//   watermarkMaster  the watermark master key, hex (indirect mode; see README)
//   paceInfo       'sidecar' (default) or 'egress'
//   sequencing     false serves variant A to every session
//   allowedOrigins CORS allow-list ("https://player.example" or "*")
//   corsMaxAge     seconds (default 600)
//   isRevoked      async (claims) => boolean: a deny-list (optional)
//   fetch          the fetch used for the origin (default: globalThis.fetch)
//   now            () => Unix seconds (default: the clock)
//   cacheLimit     entries kept per cache (default 10,000)
export async function createEdge(config) {
  if (!config?.origin) throw new Error('abseal edge: config: origin is required');
  const origin = String(config.origin).replace(/\/+$/, '');
  const keyTexts = config.tokenKeys ?? [];
  if (keyTexts.length === 0) throw new Error('abseal edge: config: at least one token key is required');
  const keys = new Map();
  for (const t of keyTexts) {
    const k = await importTokenKey(t);
    keys.set(k.kid, k);
  }
  const patternKeys = config.patternKey ? await importPatternKey(config.patternKey) : {};
  let master = null;
  if (config.watermarkMaster) {
    master = hexDecode(config.watermarkMaster);
    if (master.length < 16) throw new Error('abseal edge: config: watermark master key shorter than 16 bytes');
  }
  const paceMode = config.paceInfo ?? 'sidecar';
  if (paceMode !== 'sidecar' && paceMode !== 'egress') throw new Error(`abseal edge: config: paceInfo ${paceMode}: want sidecar or egress`);
  if (config.originSecret !== undefined && config.originSecret !== '' && te.encode(config.originSecret).length < 32) {
    throw new Error('abseal edge: config: the origin secret needs at least 32 bytes');
  }
  const cors = normalizeOrigins(config.allowedOrigins);
  const corsMaxAge = String(config.corsMaxAge ?? 600);
  const sequencing = config.sequencing !== false;
  const doFetch = config.fetch ?? ((...a) => fetch(...a));
  const now = config.now ?? (() => Math.floor(Date.now() / 1000));
  const limit = config.cacheLimit ?? 10000;

  const caches = { tokens: new Map(), patterns: new Map(), codes: new Map(), paces: new Map() };
  const remember = (m, k, v) => {
    if (m.size >= limit) m.clear();
    m.set(k, v);
    return v;
  };

  const originHeaders = (extra = {}) => {
    const h = new Headers(extra);
    if (config.originSecret) h.set(ORIGIN_SECRET_HEADER, config.originSecret);
    return h;
  };
  const originURL = (assetId, rel) => `${origin}/origin/assets/${assetId}/${rel}`;

  async function verify(token) {
    const t = now();
    const hit = caches.tokens.get(token);
    if (hit) {
      if (t > hit.expiry + LEEWAY_SECONDS) throw new TokenError(Reason.expired);
      return hit;
    }
    return remember(caches.tokens, token, await verifyToken(token, keys, t));
  }

  // position fetches the segment's WMPaceInfo and the asset's code
  // headers from the origin (through the CDN's cache).
  async function position(assetId, rung, number) {
    // Kept a minute: one origin (cache) fetch per segment and function
    // instance, not one per request.
    const ck = `${assetId}/${rung}/${number}`;
    const hit = caches.paces.get(ck);
    if (hit && Date.now() - hit.at < 60_000) return hit;
    return remember(caches.paces, ck, { ...(await fetchPosition(assetId, rung, number)), at: Date.now() });
  }

  async function fetchPosition(assetId, rung, number) {
    const file = segmentFile(number);
    let resp, pace;
    if (paceMode === 'sidecar') {
      resp = await doFetch(originURL(assetId, `${rung}/WMPaceInfo/${file}`), { headers: originHeaders() });
      if (resp.status === 404) throw await notFound(resp, new EdgeError(400, 'no WMPaceInfo for this segment'));
      if (!resp.ok) throw new EdgeError(502, 'upstream error');
      pace = parsePaceInfo(new Uint8Array(await resp.arrayBuffer()));
    } else {
      resp = await doFetch(originURL(assetId, `${rung}/a/${file}`), { method: 'HEAD', headers: originHeaders() });
      if (resp.status === 404) throw await notFound(resp, new EdgeError(404, 'no such segment'));
      if (!resp.ok) throw new EdgeError(502, 'upstream error');
      const h = resp.headers.get(PACE_INFO_EGRESS_HEADER);
      if (!h) throw new EdgeError(400, 'no WMPaceInfo for this segment');
      try {
        pace = parsePaceInfo(b64urlDecode(h.replace(/=+$/, '')));
      } catch {
        pace = null;
      }
    }
    if (!pace) throw new EdgeError(400, 'unusable WMPaceInfo for this segment');
    const n = Number(resp.headers.get(PATTERN_LENGTH_HEADER) ?? 'NaN');
    return { position: pace.position, code: resp.headers.get(SESSION_CODE_HEADER) ?? '', patternLen: n };
  }

  // pattern returns the session's packed pattern (delivery.SessionPatternWith).
  async function pattern(token, c, assetId, code) {
    const hit = caches.patterns.get(token);
    if (hit) return hit;
    let packed;
    try {
      // A clear pattern has exactly ceil(wmpatlen/8) bytes and an
      // encrypted one is longer, so a clear pattern that starts like a
      // COSE tag is not taken for one.
      const clear = c.pattern && c.pattern.length === (c.patternLen + 7) >> 3;
      const ecdh = c.pattern && !clear ? ecdhTag(c.pattern) : null;
      if (clear) {
        packed = c.pattern;
      } else if (c.pattern && c.pattern[0] === 0xd0) {
        packed = await decryptEncrypt0(patternKeys.aes, c.pattern);
      } else if (ecdh) {
        packed = await decryptECDH(patternKeys.ecdh, ecdh);
      } else if (c.pattern) {
        packed = c.pattern;
      } else {
        if (!master || code !== CODE_TARDOS) {
          throw new TokenError(Reason.claims, 'indirect mode is not configured for this asset');
        }
        const ck = `${assetId}\u0000${c.patternLen}\u0000${c.opId}`;
        const tc = caches.codes.get(ck) ?? remember(caches.codes, ck, await TardosCode.create(master, assetId, c.patternLen, c.opId));
        packed = packBits(await tc.pattern(c.wmid));
      }
      if (packed.length * 8 < c.patternLen || packed.length > (c.patternLen + 7) >> 3) {
        throw new TokenError(Reason.claims, 'wmpattern length');
      }
    } catch (e) {
      if (e instanceof TokenError) {
        // As the Go edge says it: claims, or else "malformed" (a pattern
        // that does not open is not told apart from a broken one).
        throw new EdgeError(401, `token pattern unusable: ${e.reason === Reason.claims ? Reason.claims : Reason.malformed}`);
      }
      throw e;
    }
    return remember(caches.patterns, token, packed);
  }

  async function upstream(url, request, fixedType) {
    const h = originHeaders();
    const range = request.headers.get('Range');
    if (range) {
      if ((range.match(/,/g) ?? []).length >= 4) throw new EdgeError(416, 'at most 4 byte ranges per request');
      h.set('Range', range);
    }
    const resp = await doFetch(url, { method: request.method === 'HEAD' ? 'HEAD' : 'GET', headers: h });
    if (resp.status === 404) throw await notFound(resp, new EdgeError(404, 'no such object'));
    if (resp.status !== 200 && resp.status !== 206 && resp.status !== 416) throw new EdgeError(502, 'upstream error');
    const out = new Headers();
    for (const k of PASS_HEADERS) {
      const v = resp.headers.get(k);
      if (v !== null) out.set(k, v);
    }
    if (fixedType) out.set('Content-Type', fixedType);
    out.set('Cache-Control', 'private, no-store');
    out.set('X-Content-Type-Options', 'nosniff');
    return new Response(request.method === 'HEAD' ? null : resp.body, { status: resp.status, headers: out });
  }

  async function serve(request, token, assetId, object) {
    if (!token) throw new EdgeError(401, 'a watermarking token is required');
    let c;
    try {
      c = await verify(token);
    } catch (e) {
      if (e instanceof TokenError) throw new EdgeError(401, `token refused: ${e.reason}`);
      throw e;
    }
    if (c.audience !== assetId) throw new EdgeError(403, 'the token is not for this asset');
    if (config.isRevoked && await config.isRevoked(c)) throw new EdgeError(403, 'the session is revoked');
    const ref = parsePlayerObject(object);
    if (!ref) throw new EdgeError(404, 'no such object');
    if (ref.kind !== 'segment' || ref.rung === AUDIO_RUNG) {
      return upstream(originURL(assetId, object), request);
    }
    const pace = await position(assetId, ref.rung, ref.number);
    let v = 'a';
    if (pace.patternLen > 0) {
      if (c.patternLen !== pace.patternLen) {
        throw new EdgeError(400, `wmpatlen ${c.patternLen} does not match the asset's pattern length ${pace.patternLen}`);
      }
      v = variant(await pattern(token, c, assetId, pace.code), c.patternLen, pace.position, sequencing);
    } else if (!Number.isInteger(pace.patternLen)) {
      throw new EdgeError(502, 'upstream error');
    }
    return upstream(originURL(assetId, `${ref.rung}/${v}/${segmentFile(ref.number)}`), request);
  }

  function corsHeaders(request, h) {
    if (cors.set.size === 0 && !cors.any) return false;
    h.append('Vary', 'Origin');
    const o = request.headers.get('Origin');
    if (!o || (!cors.any && !cors.set.has(o.toLowerCase()))) return false;
    h.set('Access-Control-Allow-Origin', cors.any ? '*' : o);
    h.set('Access-Control-Expose-Headers', CORS_EXPOSE);
    return true;
  }

  function text(status, msg, h = new Headers()) {
    h.set('Content-Type', 'text/plain; charset=utf-8');
    h.set('X-Content-Type-Options', 'nosniff');
    return new Response(msg + '\n', { status, headers: h });
  }

  return async function handle(request) {
    const h = new Headers();
    const allowed = corsHeaders(request, h);
    const withCORS = (resp) => {
      for (const [k, v] of h) resp.headers.set(k, v);
      return resp;
    };
    if (request.method === 'OPTIONS') {
      const m = request.headers.get('Access-Control-Request-Method');
      if (!m) {
        h.set('Allow', 'GET, HEAD, OPTIONS');
        return new Response(null, { status: 204, headers: h });
      }
      if (!allowed) return text(403, 'origin not allowed', h);
      if (m !== 'GET' && m !== 'HEAD') {
        h.set('Allow', 'GET, HEAD, OPTIONS');
        return text(405, 'method not allowed', h);
      }
      h.set('Access-Control-Allow-Methods', CORS_METHODS);
      h.set('Access-Control-Allow-Headers', CORS_HEADERS);
      h.set('Access-Control-Max-Age', corsMaxAge);
      return new Response(null, { status: 204, headers: h });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      h.set('Allow', 'GET, HEAD, OPTIONS');
      return text(405, 'method not allowed', h);
    }
    const url = new URL(request.url);
    let p = url.pathname;
    if (p === '/healthz') return text(200, 'ok', h);
    // Clean paths only (no "//", ".", "..", trailing "/", escapes): never
    // redirected, as a redirect would repeat the token.
    if (p.includes('%') || p.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..') || p.startsWith('/origin/')) {
      return text(404, 'not found', h);
    }
    let token = '';
    if (p.startsWith('/t/')) {
      const rest = p.slice(3);
      const i = rest.indexOf('/');
      if (i <= 0) return text(404, 'not found', h);
      token = rest.slice(0, i);
      p = rest.slice(i);
    } else {
      token = request.headers.get('WMT') ?? '';
      const a = request.headers.get('Authorization') ?? '';
      if (!token && a.startsWith('Bearer ')) token = a.slice(7);
    }
    const m = /^\/assets\/([^/]+)\/(.+)$/.exec(p);
    if (!m) return text(404, 'not found', h);
    try {
      return withCORS(await serve(request, token, m[1], m[2]));
    } catch (e) {
      if (e instanceof EdgeError) {
        if (e.status === 401) h.set('WWW-Authenticate', 'Bearer realm="abseal"');
        return text(e.status, e.message, h);
      }
      config.log?.('abseal edge: internal error', e?.name ?? 'Error');
      return text(502, 'upstream error', h);
    }
  };
}

// configFromEnv reads createEdge's config from environment variables (a
// Cloudflare Worker's env, process.env): ABSEAL_ORIGIN, ABSEAL_ORIGIN_SECRET,
// ABSEAL_TOKEN_KEYS (JSON array of key files' contents, or one key),
// ABSEAL_PATTERN_KEY, ABSEAL_WATERMARK_MASTER, ABSEAL_PACE_INFO,
// ABSEAL_SEQUENCING ("false" turns it off), ABSEAL_CORS_ORIGINS
// (comma-separated), ABSEAL_CORS_MAX_AGE (seconds).
export function configFromEnv(env) {
  const keys = env.ABSEAL_TOKEN_KEYS ?? '';
  let tokenKeys;
  try {
    tokenKeys = keys.trim().startsWith('[') ? JSON.parse(keys) : [keys];
  } catch {
    throw new Error('abseal edge: ABSEAL_TOKEN_KEYS: not a JSON array of key files');
  }
  return {
    origin: env.ABSEAL_ORIGIN,
    originSecret: env.ABSEAL_ORIGIN_SECRET || undefined,
    tokenKeys: tokenKeys.filter((k) => k && k.trim()),
    patternKey: env.ABSEAL_PATTERN_KEY || undefined,
    watermarkMaster: env.ABSEAL_WATERMARK_MASTER || undefined,
    paceInfo: env.ABSEAL_PACE_INFO || undefined,
    sequencing: env.ABSEAL_SEQUENCING !== 'false',
    allowedOrigins: (env.ABSEAL_CORS_ORIGINS ?? '').split(',').filter((s) => s.trim()),
    corsMaxAge: env.ABSEAL_CORS_MAX_AGE ? Number(env.ABSEAL_CORS_MAX_AGE) : undefined,
  };
}
