/** A proxy in front of a real OWP server that answers its cursor-paged lists (`/v1/tasks`, `/v1/workers`,
 * `/v1/workers/reputation`) a
 * few items a page, with the server's own cursors: the plugin asks for 1,000 a page, the most the server
 * gives, so without it a test would need thousands of rows to see a second page. It can hold a page back,
 * so that a test changes the pool while a list is half read. Everything else (the event stream too) passes
 * through as it is. */

import * as http from "node:http";
import type { AddressInfo } from "node:net";

const PAGED = new Set(["/v1/tasks", "/v1/workers", "/v1/workers/reputation"]);

interface Hold {
  path: string;
  reached: () => void;
  released: Promise<void>;
}

export class PagingProxy {
  /** The paged requests as the client sent them (path and query), in order. */
  readonly pagedRequests: string[] = [];
  /** Every request's method and path (no query), in order. */
  readonly requests: string[] = [];
  url = "";
  private readonly holds: Hold[] = [];
  private readonly server = http.createServer((request, response) => void this.forward(request, response));

  private constructor(
    private readonly upstream: string,
    private readonly pageSize: number,
  ) {}

  static async start(upstream: string, pageSize: number): Promise<PagingProxy> {
    const proxy = new PagingProxy(upstream, pageSize);
    await new Promise<void>((done) => proxy.server.listen(0, "127.0.0.1", done));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** Holds back the next request for a later page (one with a cursor) of `path` until `release` is called. */
  holdNextPage(path: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((done) => (reached = done));
    this.holds.push({ path, reached, released: new Promise<void>((done) => (release = done)) });
    return { reached: arrived, release };
  }

  private async forward(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const target = new URL(request.url ?? "/", this.upstream);
    this.requests.push(`${request.method} ${target.pathname}`);
    if (PAGED.has(target.pathname)) {
      this.pagedRequests.push(request.url ?? "");
      const at = this.holds.findIndex((h) => h.path === target.pathname && target.searchParams.has("cursor"));
      if (at >= 0) {
        const [hold] = this.holds.splice(at, 1);
        hold.reached();
        await hold.released;
      }
      target.searchParams.set("limit", String(this.pageSize));
    }
    const onward = http.request(target, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    onward.on("error", () => response.destroy());
    response.on("close", () => onward.destroy());  // the client hung up (a stream it stopped)
    request.pipe(onward);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((done) => this.server.close(done));
  }
}
