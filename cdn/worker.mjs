// Cloudflare Workers entry of the edge function (see README.md): the
// ABSEAL_* settings come from the Worker's variables and secrets, and
// origin fetches go through Cloudflare's cache (cacheEverything: the
// origin's variant objects are public and immutable, its playlists
// cacheable for a minute).
import { createEdge, configFromEnv } from './abseal-edge.mjs';

let handler;

export default {
  async fetch(request, env) {
    handler ??= createEdge({
      ...configFromEnv(env),
      fetch: (url, init) => fetch(url, { ...init, cf: { cacheEverything: true } }),
    });
    return (await handler)(request);
  },
};
