// A Node server around the edge function, for local use and the
// end-to-end test (cmd/edge TestCDNEdgeFunction):
//
//   node cdn/serve.mjs [--config FILE] [--listen 127.0.0.1:8788]
//
// FILE is createEdge's config as JSON; without it the ABSEAL_* variables
// of configFromEnv are read. It prints "abseal-edge listening on URL" once
// it serves.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createEdge, configFromEnv } from './abseal-edge.mjs';

function args(argv) {
  const out = { listen: '127.0.0.1:8788' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') out.config = argv[++i];
    else if (a === '--listen') out.listen = argv[++i];
    else throw new Error(`unknown argument ${a}: use --config FILE --listen HOST:PORT`);
  }
  return out;
}

async function main() {
  const a = args(process.argv.slice(2));
  const config = a.config ? JSON.parse(readFileSync(a.config, 'utf8')) : configFromEnv(process.env);
  config.log = (msg, cls) => console.error(msg, cls);
  const handle = await createEdge(config);
  const i = a.listen.lastIndexOf(':');
  const host = a.listen.slice(0, i), port = Number(a.listen.slice(i + 1));
  const server = http.createServer(async (req, res) => {
    try {
      const headers = new Headers();
      for (let k = 0; k < req.rawHeaders.length; k += 2) headers.append(req.rawHeaders[k], req.rawHeaders[k + 1]);
      const resp = await handle(new Request(`http://${host}:${server.address().port}${req.url}`, { method: req.method, headers }));
      res.writeHead(resp.status, Object.fromEntries(resp.headers));
      if (resp.body) for await (const chunk of resp.body) res.write(chunk);
      res.end();
    } catch (e) {
      console.error('abseal-edge: request failed:', e?.name ?? 'Error');
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('upstream error\n');
    }
  });
  server.listen(port, host, () => {
    const ad = server.address();
    console.log(`abseal-edge listening on http://${ad.address}:${ad.port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(`abseal-edge: ${e.message}`);
  process.exit(1);
});
