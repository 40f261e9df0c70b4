// Node's test runner (`node --test` in cdn/, run by `go test ./cdn`):
// the edge function against the vectors the Go implementation wrote
// (testdata/vectors.json), and its handler against an origin stub. The
// end-to-end test with the real Go origin is cmd/edge's
// TestCDNEdgeFunction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  createEdge, verifyToken, importTokenKey, TardosCode, parsePlayerObject, parsePaceInfo, b64urlDecode, hexDecode,
  variant, packBits, configFromEnv, segmentFile,
} from './abseal-edge.mjs';

const V = JSON.parse(readFileSync(new URL('./testdata/vectors.json', import.meta.url), 'utf8'));
const bitsOf = (s) => Uint8Array.from(s, (c) => (c === '1' ? 1 : 0));

async function keyMap() {
  const m = new Map();
  for (const t of V.token_keys) {
    const k = await importTokenKey(t);
    m.set(k.kid, k);
  }
  return m;
}

test('tokens verify as in Go', async () => {
  const keys = await keyMap();
  for (const tv of V.Tokens) {
    let reason = '';
    try {
      await verifyToken(tv.token, keys, V.now);
    } catch (e) {
      reason = e.reason ?? `unexpected ${e}`;
    }
    assert.equal(reason, tv.reason ?? '', tv.name);
  }
});

test('tardos-v1 codewords are the Go ones', async () => {
  const master = hexDecode(V.watermark_master);
  for (const cv of V.Codes) {
    const code = await TardosCode.create(master, cv.asset, cv.n, BigInt(cv.opid));
    const bits = await code.pattern(BigInt(cv.wmid));
    assert.equal(Array.from(bits).join(''), cv.bits, `${cv.asset} n=${cv.n} wmid=${cv.wmid}`);
  }
});

test('the layout: what a player may fetch, as asset.Parse reads it', () => {
  for (const pv of V.Paths) {
    const got = parsePlayerObject(pv.path);
    const want = pv.kind ? { kind: pv.kind, ...(pv.rung ? { rung: pv.rung } : {}), ...(pv.number ? { number: pv.number } : {}) } : null;
    assert.deepEqual(got, want, JSON.stringify(pv.path));
  }
});

test('WMPaceInfo sidecars and egress headers', () => {
  for (const pv of V.Paces) {
    const got = parsePaceInfo(hexDecode(pv.hex));
    assert.deepEqual(got, pv.ok ? { position: pv.position } : null, pv.hex);
    let egress;
    try {
      egress = parsePaceInfo(b64urlDecode(pv.egress));
    } catch {
      egress = null;
    }
    assert.deepEqual(egress, got, `egress ${pv.egress}`);
  }
});

test('variant: MSB first, modulo the pattern, A where unmarked or off', () => {
  const p = packBits([1, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  assert.deepEqual([0, 1, 8, 9, 10, 11].map((i) => variant(p, 10, i)), ['b', 'a', 'b', 'b', 'b', 'a']);
  assert.equal(variant(p, 10, -1), 'a');
  assert.equal(variant(p, 10, 0, false), 'a');
  assert.equal(variant(p, 17, 0), 'a'); // pattern shorter than wmpatlen
});

// stubOrigin serves what the Go edge in origin mode serves for the
// vectors' asset: sidecars (with the code headers), both variants of
// every segment ("A:<n>", "B:<n>", with the egress header), playlists.
function stubOrigin(opts = {}) {
  const calls = [];
  const pace = (n) => {
    const pos = n - 2; // segment 1 unmarked
    return { pos, hex: segPace(pos) };
  };
  const fetch = async (url, init = {}) => {
    const u = new URL(url);
    calls.push({ path: u.pathname, method: init.method ?? 'GET', headers: new Headers(init.headers) });
    if (opts.secret && new Headers(init.headers).get('Abseal-Origin-Secret') !== opts.secret) return new Response('not found', { status: 404 });
    const m = /^\/origin\/assets\/([^/]+)\/(.+)$/.exec(u.pathname);
    if (!m) return new Response('not found', { status: 404 });
    if (m[1] !== V.asset) return new Response('no such asset\n', { status: 404 });
    const rel = m[2];
    const code = { 'Abseal-Session-Code': opts.code ?? 'tardos-v1', 'Abseal-Pattern-Length': String(opts.patternLen ?? V.pattern_length) };
    let r;
    if ((r = /^(720p|360p)\/WMPaceInfo\/seg-(\d{5})\.m4s$/.exec(rel))) {
      if (opts.noSidecar) return new Response('no', { status: 404 });
      return new Response(hexDecode(pace(Number(r[2])).hex), { headers: { 'Content-Type': 'application/cbor', ...code } });
    }
    if ((r = /^(720p|360p)\/(a|b)\/seg-(\d{5})\.m4s$/.exec(rel))) {
      const body = `${r[2].toUpperCase()}:${Number(r[3])}`;
      const h = { 'Content-Type': 'video/mp4', 'Content-Length': String(body.length), ETag: '"variant-' + r[2] + '"', 'X-Cache': 'HIT', WMPaceInfoEgress: Buffer.from(hexDecode(pace(Number(r[3])).hex)).toString('base64url'), ...code };
      return new Response(init.method === 'HEAD' ? null : body, { headers: h });
    }
    if (rel === 'hls/master.m3u8' || rel === '720p/init.mp4' || rel === 'audio/seg-00003.m4s') {
      return new Response(`neutral ${rel}`, { headers: { 'Content-Type': rel.endsWith('m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp4' } });
    }
    if (opts.broken) return new Response('boom', { status: 500 });
    return new Response('no such object', { status: 404 });
  };
  return { fetch, calls };
}

function segPace(pos) {
  // {1: 1, 6: pos}, deterministic CBOR
  const p = pos < 0 ? [0x20 + (-1 - pos)] : pos < 24 ? [pos] : pos < 256 ? [0x18, pos] : [0x19, pos >> 8, pos & 255];
  return Buffer.from([0xa2, 0x01, 0x01, 0x06, ...p]).toString('hex');
}

async function edgeFor(opts = {}, extra = {}) {
  const o = stubOrigin(opts);
  const h = await createEdge({
    origin: 'http://origin.test', tokenKeys: V.token_keys, patternKey: V.pattern_key_aes, watermarkMaster: V.watermark_master,
    fetch: o.fetch, now: () => V.now, ...extra,
  });
  return { h, o };
}

const seg = (tok, n, rung = '720p') => `http://cdn.test/t/${tok}/assets/${V.asset}/${rung}/${segmentFile(n)}`;

test('the handler answers every token vector as the Go edge does', async () => {
  const { h } = await edgeFor();
  const ecdh = await edgeFor({}, { patternKey: V.pattern_key_ecdh });
  for (const tv of V.Tokens) {
    const hh = tv.name.includes('ECDH') ? ecdh.h : h;
    for (const n of [1, 2, 3, 50, 101, 102, 180]) {
      // A token that is not URL-safe travels in the header.
      const req = /^[A-Za-z0-9_-]+$/.test(tv.token) ? new Request(seg(tv.token, n))
        : new Request(`http://cdn.test/assets/${V.asset}/720p/${segmentFile(n)}`, { headers: { WMT: tv.token } });
      const resp = await hh(req);
      const body = await resp.text();
      assert.equal(resp.status, tv.status, `${tv.name} segment ${n}: ${body}`);
      if (tv.status !== 200) {
        assert.equal(body.trim(), tv.message, tv.name);
        if (tv.status === 401) assert.equal(resp.headers.get('WWW-Authenticate'), 'Bearer realm="abseal"');
        continue;
      }
      const want = n === 1 ? 'a' : tv.pattern[(n - 2) % V.pattern_length] === '1' ? 'b' : 'a';
      assert.equal(body, `${want.toUpperCase()}:${n}`, `${tv.name} segment ${n}`);
      assert.equal(resp.headers.get('Cache-Control'), 'private, no-store');
      assert.equal(resp.headers.get('ETag'), null, 'no header tells the variants apart');
      assert.equal(resp.headers.get('X-Cache'), null);
      assert.equal(resp.headers.get('WMPaceInfoEgress'), null);
      assert.equal(resp.headers.get('Abseal-Session-Code'), null);
    }
  }
});

test('egress mode reads the position from the origin header', async () => {
  const { h, o } = await edgeFor({}, { paceInfo: 'egress' });
  const tv = V.Tokens.find((t) => t.name === 'hmac indirect');
  for (const n of [1, 2, 7]) {
    const body = await (await h(new Request(seg(tv.token, n)))).text();
    const want = n === 1 ? 'A' : tv.pattern[n - 2] === '1' ? 'B' : 'A';
    assert.equal(body, `${want}:${n}`);
  }
  assert.ok(o.calls.some((c) => c.method === 'HEAD' && c.path.endsWith('/a/seg-00002.m4s')));
  assert.ok(!o.calls.some((c) => c.path.includes('WMPaceInfo')));
});

test('token in a header, neutral objects, audio, refusals', async () => {
  const { h, o } = await edgeFor({ secret: 'an origin secret of at least 32 bytes..' }, { originSecret: 'an origin secret of at least 32 bytes..' });
  const tok = V.Tokens.find((t) => t.name === 'es256 direct');
  const base = `http://cdn.test/assets/${V.asset}/`;
  for (const hdr of [{ WMT: tok.token }, { Authorization: `Bearer ${tok.token}` }]) {
    const r = await h(new Request(base + '720p/seg-00005.m4s', { headers: hdr }));
    assert.equal(r.status, 200);
    assert.equal(await r.text(), `${tok.pattern[3] === '1' ? 'B' : 'A'}:5`);
  }
  for (const [p, want] of [['hls/master.m3u8', 'neutral hls/master.m3u8'], ['720p/init.mp4', 'neutral 720p/init.mp4'], ['audio/seg-00003.m4s', 'neutral audio/seg-00003.m4s']]) {
    const r = await h(new Request(base + p, { headers: { WMT: tok.token } }));
    assert.equal(r.status, 200, p);
    assert.equal(await r.text(), want);
  }
  assert.ok(o.calls.every((c) => c.headers.get('Abseal-Origin-Secret')), 'every origin request carries the secret');
  const cases = [
    ['no token', new Request(base + '720p/seg-00005.m4s'), 401, 'a watermarking token is required'],
    ['a variant path', new Request(base + '720p/b/seg-00005.m4s', { headers: { WMT: tok.token } }), 404, 'no such object'],
    ['a sidecar', new Request(base + '720p/WMPaceInfo/seg-00005.m4s', { headers: { WMT: tok.token } }), 404, 'no such object'],
    ['the manifest', new Request(base + 'manifest.json', { headers: { WMT: tok.token } }), 404, 'no such object'],
    ['an origin path', new Request(`http://cdn.test/origin/assets/${V.asset}/720p/a/seg-00005.m4s`, { headers: { 'Abseal-Origin-Secret': 'x' } }), 404, 'not found'],
    ['an unclean path', new Request(`http://cdn.test/t/${tok.token}/assets/${V.asset}//720p/seg-00005.m4s`), 404, 'not found'],
    ['an escaped path', new Request(`http://cdn.test/t/${tok.token}/assets/${V.asset}/720p%2Fseg-00005.m4s`), 404, 'not found'],
    ['a trailing slash', new Request(`http://cdn.test/t/${tok.token}/assets/${V.asset}/720p/`), 404, 'not found'],
    ['POST', new Request(base + '720p/seg-00005.m4s', { method: 'POST', headers: { WMT: tok.token } }), 405, 'method not allowed'],
    ['five ranges', new Request(base + '720p/seg-00005.m4s', { headers: { WMT: tok.token, Range: 'bytes=0-1,2-3,4-5,6-7,8-9' } }), 416, 'at most 4 byte ranges per request'],
  ];
  for (const [name, req, status, msg] of cases) {
    const r = await h(req);
    assert.equal(r.status, status, name);
    assert.equal((await r.text()).trim(), msg, name);
  }
  const head = await h(new Request(base + '720p/seg-00005.m4s', { method: 'HEAD', headers: { WMT: tok.token } }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('the asset decides: code, pattern length, sidecars, upstream errors', async () => {
  const ind = V.Tokens.find((t) => t.name === 'hmac indirect');
  const dir = V.Tokens.find((t) => t.name === 'hmac direct');
  let { h } = await edgeFor({ code: 'convolutional' });
  let r = await h(new Request(seg(ind.token, 4)));
  assert.equal(r.status, 401, 'indirect mode for a convolutional asset');
  assert.equal((await r.text()).trim(), 'token pattern unusable: token claims are invalid');
  assert.equal((await h(new Request(seg(dir.token, 4)))).status, 200, 'direct mode works for any code');
  ({ h } = await edgeFor({}, { watermarkMaster: undefined }));
  assert.equal((await h(new Request(seg(ind.token, 4)))).status, 401, 'indirect mode without the master key');
  ({ h } = await edgeFor({ patternLen: 0, code: 'none' }));
  r = await h(new Request(seg(ind.token, 4)));
  assert.equal(await r.text(), 'A:4', 'an unmarked asset: variant A');
  // An asset the origin does not have: 404 as the Go edge says it.
  const other = V.Tokens.find((t) => t.name === 'another asset');
  r = await (await edgeFor({}, { now: () => V.now })).h(new Request(`http://cdn.test/t/${other.token}/assets/another-asset/720p/seg-00002.m4s`));
  assert.equal(r.status, 404);
  assert.equal((await r.text()).trim(), 'no such asset');
  ({ h } = await edgeFor({ noSidecar: true }));
  r = await h(new Request(seg(ind.token, 4)));
  assert.equal(r.status, 400);
  assert.equal((await r.text()).trim(), 'no WMPaceInfo for this segment');
  ({ h } = await edgeFor({ broken: true }));
  r = await h(new Request(`http://cdn.test/t/${ind.token}/assets/${V.asset}/dash/manifest.mpd`));
  assert.equal(r.status, 502);
  ({ h } = await edgeFor({}, { sequencing: false }));
  for (const n of [2, 3, 4, 5, 6, 7, 8, 9]) assert.equal(await (await h(new Request(seg(ind.token, n)))).text(), `A:${n}`);
  ({ h } = await edgeFor({}, { isRevoked: async (c) => c.wmid === 1002n }));
  r = await h(new Request(seg(ind.token, 4)));
  assert.equal(r.status, 403);
  assert.equal((await r.text()).trim(), 'the session is revoked');
});

test('CORS as the Go edge: allow-list, preflight, headers on errors', async () => {
  const { h } = await edgeFor({}, { allowedOrigins: ['https://player.example'] });
  const pre = await h(new Request(seg('x', 2), { method: 'OPTIONS', headers: { Origin: 'https://player.example', 'Access-Control-Request-Method': 'GET' } }));
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('Access-Control-Allow-Origin'), 'https://player.example');
  assert.equal(pre.headers.get('Access-Control-Allow-Headers'), 'Authorization, WMT, Range');
  assert.equal(pre.headers.get('Access-Control-Max-Age'), '600');
  const other = await h(new Request(seg('x', 2), { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' } }));
  assert.equal(other.status, 403);
  const err = await h(new Request(seg('', 2).replace('/t//', '/'), { headers: { Origin: 'https://player.example' } }));
  assert.equal(err.status, 401);
  assert.equal(err.headers.get('Access-Control-Allow-Origin'), 'https://player.example');
  assert.match(err.headers.get('Vary'), /Origin/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: V.token_keys, allowedOrigins: ['https://x.example/path'] }), /allowed origin/);
});

test('configuration errors are named', async () => {
  await assert.rejects(createEdge({ tokenKeys: V.token_keys }), /origin is required/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: [] }), /at least one token key/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: ['abcd'] }), /at least 32/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: ['-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----'] }), /PUBLIC KEY/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: V.token_keys, patternKey: '-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----' }), /PKCS#8/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: V.token_keys, originSecret: 'short' }), /32 bytes/);
  await assert.rejects(createEdge({ origin: 'http://o', tokenKeys: V.token_keys, paceInfo: 'sei' }), /sidecar or egress/);
  const c = configFromEnv({ ABSEAL_ORIGIN: 'http://o', ABSEAL_TOKEN_KEYS: JSON.stringify(V.token_keys), ABSEAL_CORS_ORIGINS: 'https://a.example, https://b.example', ABSEAL_SEQUENCING: 'false' });
  assert.equal(c.tokenKeys.length, 2);
  assert.equal(c.sequencing, false);
  assert.deepEqual(c.allowedOrigins.map((s) => s.trim()), ['https://a.example', 'https://b.example']);
  assert.equal(configFromEnv({ ABSEAL_TOKEN_KEYS: V.token_keys[0] }).tokenKeys.length, 1);
});

test('hostile tokens: oversized, wrong COSE, wrong algorithms', async () => {
  const keys = await keyMap();
  const bad = async (tok) => {
    try {
      await verifyToken(tok, keys, V.now);
      return '';
    } catch (e) {
      return e.reason;
    }
  };
  assert.equal(await bad('A'.repeat(9000)), 'malformed token');
  assert.equal(await bad(''), 'malformed token');
  assert.equal(await bad(Buffer.from([0xd8, 0x3d, 0xd1, 0x80]).toString('base64url')), 'malformed token'); // 61(16-tag? no: 17([]))
  assert.equal(await bad(Buffer.from([0xd0, 0x84, 0x40, 0xa0, 0x40, 0x40]).toString('base64url')), 'malformed token'); // tag 16
  assert.equal(await bad(Buffer.from([0x9f, 0xff]).toString('base64url')), 'malformed token'); // indefinite array
  // A Sign1 token relabelled as a Mac0: the algorithm check refuses it.
  const es = V.Tokens.find((t) => t.name === 'es256 direct').token;
  const raw = b64urlDecode(es);
  raw[0] = 0xd1;
  assert.equal(await bad(Buffer.from(raw).toString('base64url')), 'malformed token');
});
