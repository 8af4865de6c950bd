/** A real OWP server for the plugin's tests: `owp serve` from the repo's venv on a free port, with its own
 * SQLite file in a temp dir, stopped after the tests. */

import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requestUrl } from "./obsidian-mock";

export const ADMIN_TOKEN = "plugin-test-admin-token-0123456789";
// (happy-dom replaces the global URL, so the path is built from __dirname, which vitest provides)
const OWP = process.env.OWP_BIN ?? resolve(__dirname, "../../.venv/bin/owp");

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export class PoolServer {
  private constructor(
    readonly url: string,
    private readonly process: ChildProcess,
    private readonly dir: string,
    /** What the server printed, for a failing test's message. */
    readonly output: string[],
  ) {}

  /** Starts a server; a port taken between choosing and binding it (parallel test files) means another try. */
  static async start(env: Record<string, string> = {}, demo = false): Promise<PoolServer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await PoolServer.startOnce(env, demo);
      } catch (error) {
        if (attempt >= 3 || !/address already in use|Errno 98/i.test(String(error))) throw error;
      }
    }
  }

  /** `demo`: `owp demo --no-start` (demo mode with its GitHub stand-in; the scenario starts on POST /v1/demo/start). */
  private static async startOnce(env: Record<string, string>, demo: boolean): Promise<PoolServer> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "owp-plugin-"));
    const output: string[] = [];
    const args = demo ? ["demo", "--no-start", "--data", dir, "--port", String(port)] : ["serve", "--port", String(port)];
    const child = spawn(OWP, args, {
      env: { ...process.env, OWP_ADMIN_TOKEN: ADMIN_TOKEN, OWP_DB_PATH: join(dir, "pool.db"), OWP_HOST: "127.0.0.1", OWP_LOG_LEVEL: "WARNING", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
    child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
    const server = new PoolServer(`http://127.0.0.1:${port}`, child, dir, output);
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`owp serve exited ${child.exitCode}: ${output.join("")}`);
      }
      try {
        const answer = await requestUrl({ url: `${server.url}/readyz`, throw: false });
        if (answer.status === 200) return server;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.stop();
    throw new Error(`owp serve did not become ready: ${output.join("")}`);
  }

  /** An admin call for seeding; fails the test on an error answer. */
  async admin(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<any> {
    const answer = await requestUrl({
      url: `${this.url}${path}`,
      method,
      headers: { "X-Admin-Token": ADMIN_TOKEN },
      contentType: body === undefined ? undefined : contentType,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      throw: false,
    });
    if (answer.status >= 400) throw new Error(`${method} ${path} -> ${answer.status}: ${answer.text}`);
    return answer.text ? JSON.parse(answer.text) : null;
  }

  async repo(name: string, maxOpenPrs = 3): Promise<void> {
    await this.admin("PUT", `/v1/repos/${name}`, { max_open_prs: maxOpenPrs });
  }

  async task(repo: string, title: string, fields: Record<string, unknown> = {}): Promise<string> {
    return (await this.admin("POST", "/v1/tasks", { repo, title, ...fields })).task.task_id;
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null) {
      const exited = new Promise((r) => this.process.once("exit", r));
      this.process.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
