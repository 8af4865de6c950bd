/** Test helpers shared by the plugin's test files. */

import { OwpClient } from "../src/api";
import { ADMIN_TOKEN, PoolServer } from "./pool-server";

export interface Creds {
  baseUrl: string;
  workerToken: string;
  adminToken: string;
}

/** A client of the server at `server.url` (a PoolServer, or a proxy in front of one). */
export function clientFor(server: { url: string }, workerToken = "", adminToken = ""): { client: OwpClient; creds: Creds } {
  const creds = { baseUrl: server.url, workerToken, adminToken };
  return { client: new OwpClient(() => creds), creds };
}

export async function registeredWorker(server: PoolServer, name: string, skills: string[], capacity = 5, concurrency = 2) {
  const { client, creds } = clientFor(server);
  const registered = await client.register({ name, skills, capacity_points: capacity, max_concurrent_tasks: concurrency, github_handle: null });
  creds.workerToken = registered.token;
  await client.heartbeat("idle");
  return { client, creds, workerId: registered.worker_id };
}

export function admin(server: PoolServer): OwpClient {
  return clientFor(server, "", ADMIN_TOKEN).client;
}

/** Waits until `check` passes (for work the app starts without awaiting, such as a frontmatter edit). */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
