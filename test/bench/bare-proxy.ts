// The thinnest useful Node pass-through, for comparison: node:http in, a pooled undici Agent out, no
// parsing. The request body is read whole first, as Warden does, because for small JSON bodies that is
// faster than streaming it (a baseline should be the fastest of the two). Run as a child process by run.ts.
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent } from 'undici';

const target = new URL(process.argv[2]);
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'te', 'upgrade', 'proxy-connection', 'trailer']);

const server = createServer(async (req, res) => {
  try {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const up = await agent.request({
      origin: target.origin, path: req.url!.replace(/^\/v1/, target.pathname), method: req.method as 'POST', headers,
      body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
    });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
    res.writeHead(up.statusCode, out);
    await pipeline(up.body, res);
  } catch {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  }
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })}\n`);
});
// Ends as Warden does on SIGTERM, by exiting, so that Node writes its compile cache (run.ts warms it).
process.once('SIGTERM', () => process.exit(0));
