// A tiny static server for static/, to try the page before lobbyd serves it:
//   node page/serve.mjs [port]   then open http://127.0.0.1:PORT/?ws=ws://127.0.0.1:8080/ws
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const staticDir = fileURLToPath(new URL("../../../static/", import.meta.url));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png" };

/** Serves static/ on 127.0.0.1:port (0: a free port); resolves with the server. */
export function serveStatic(port = 0) {
  const server = createServer(async (req, res) => {
    const name = new URL(req.url ?? "/", "http://x").pathname.replace(/^\/+/, "") || "index.html";
    const file = path.join(staticDir, path.normalize(name));
    if (!file.startsWith(staticDir)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await serveStatic(Number(process.argv[2] ?? 0));
  console.log(`static/ on http://127.0.0.1:${server.address().port}/ (add ?ws=ws://HOST:PORT/ws)`);
}
