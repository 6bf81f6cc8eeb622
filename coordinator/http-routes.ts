/**
 * Plain HTTP requests on the coordinator's port (WebSocket upgrades go to the server's `ws`):
 * `GET /wsfutures/worker.mjs`, the single-file worker node. It holds no secret (the token never
 * appears in it) and is served to anyone who can reach the port; the node it starts proves it
 * knows the token before the coordinator decodes anything it sends.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WORKER_DOWNLOAD_PATH, workerScript } from './worker-download.ts';

export class HttpRoutes {
  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === WORKER_DOWNLOAD_PATH && (req.method === 'GET' || req.method === 'HEAD')) return void this.#worker(req, res);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`not found: this is a wsfutures coordinator; worker nodes connect over WebSocket, and ${WORKER_DOWNLOAD_PATH} is the single-file worker\n`);
  }

  async #worker(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const { code, sha256 } = await workerScript();
      res.writeHead(200, {
        // Deno runs a remote module only if it is served as JavaScript.
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': code.byteLength,
        'x-wsfutures-sha256': sha256,
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : code);
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`the single-file worker could not be built here: ${(err as Error).message}\n`);
    }
  }
}
