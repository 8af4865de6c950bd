// @vitest-environment node
/** The pool view's live feed: SSE frame parsing, and against the real server the stream or, when the server
 * has no stream (or is down), polling. Runs in Node so that fetch is Node's own. */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as http from "node:http";
import * as https from "node:https";
import { LiveFeed, fetchOpener, nodeOpener, parseSse, type FeedMode, type SseEvent, type StreamOpener } from "../src/live";
import { ADMIN_TOKEN, PoolServer, freePort } from "./pool-server";
import { eventually } from "./helpers";

describe("parseSse", () => {
  it("splits frames, joins data lines, skips comments and keeps the partial tail", () => {
    const { events, rest } = parseSse(": ping\n\nid: 7\nevent: task.created\ndata: {\"a\":1}\ndata: more\n\nid: 8\r\ndata: x\r\n\r\nid: 9\ndata: par");
    expect(events).toEqual([
      { id: "7", event: "task.created", data: '{"a":1}\nmore' },
      { id: "8", event: "message", data: "x" },
    ]);
    expect(rest).toBe("id: 9\ndata: par");
    expect(parseSse(`${rest}tial\n\n`).events).toEqual([{ id: "9", event: "message", data: "partial" }]);
  });
});

/** Node has no window: the feed's timers are the global ones here. */
(globalThis as { window?: unknown }).window ??= globalThis;

const OPENERS: [string, StreamOpener][] = [
  ["fetch", fetchOpener(globalThis.fetch)],
  ["node http (desktop)", nodeOpener((module) => (module === "https" ? https : http) as typeof http)],
];

function feedFor(baseUrl: string, preferStream: boolean, open: StreamOpener = OPENERS[0][1]) {
  const modes: [FeedMode, string][] = [];
  const changes: (SseEvent | null)[] = [];
  const intervals: number[] = [];
  const feed = new LiveFeed({
    credentials: () => ({ baseUrl, workerToken: "", adminToken: ADMIN_TOKEN }),
    preferStream: () => preferStream,
    pollSeconds: () => 3600,
    onChange: (event) => changes.push(event),
    onMode: (mode, reason) => modes.push([mode, reason]),
    registerInterval: (id) => {
      intervals.push(id);
      return id;
    },
    open,
  });
  return { feed, modes, changes, intervals };
}

describe("LiveFeed", () => {
  let server: PoolServer;

  beforeAll(async () => {
    server = await PoolServer.start();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it.each(OPENERS)("streams the server's events through %s, resuming after the last id", async (_name, open) => {
    const { feed, modes, changes } = feedFor(server.url, true, open);
    feed.start();
    await eventually(() => expect(feed.mode).toBe("stream"));
    expect(feed.reason).toBe("live from /v1/events/stream");
    await server.repo(`acme/live-${_name.length}`);
    await eventually(() => expect(changes.some((e) => e?.event === "repo.created")).toBe(true));
    const created = changes.find((e) => e?.event === "repo.created")!;
    expect(JSON.parse(created.data)).toMatchObject({ type: "repo.created", seq: Number(created.id) });
    feed.stop();
    expect(modes.at(-1)).toEqual(["stopped", ""]);
    // what happens while the feed is stopped arrives when it starts again (Last-Event-ID)
    await server.repo(`acme/missed-${_name.length}`);
    feed.start();
    await eventually(() => expect(changes.some((e) => e?.event === "repo.created" && e.data.includes(`acme/missed-${_name.length}`))).toBe(true));
    feed.stop();
  });

  it("falls back to polling when the stream answers an error", async () => {
    const { feed } = feedFor(server.url, true);
    // a wrong admin token: the stream's 401 (the view then polls, and the poll shows the server's detail)
    (feed as unknown as { options: { credentials: () => unknown } }).options.credentials = () => ({ baseUrl: server.url, workerToken: "", adminToken: "wrong-token-0123456789" });
    feed.start();
    await eventually(() => expect(feed.mode).toBe("poll"));
    expect(feed.reason).toBe("the event stream answered 401");
    feed.stop();
  });

  it("goes back to the stream once it answers again (a server restart that outlasts the first retry)", async () => {
    let calls = 0;
    const real = OPENERS[0][1];
    const flaky: StreamOpener = (url, headers, signal) =>
      ++calls === 1 ? Promise.reject(new Error("connect ECONNREFUSED")) : real(url, headers, signal);
    const { feed, changes } = feedFor(server.url, true, flaky);
    feed.start();
    await eventually(() => expect(feed.mode).toBe("poll"));
    expect(feed.reason).toContain("the event stream is unreachable");
    await eventually(() => expect(feed.mode).toBe("stream"), 10000);
    await server.repo("acme/back-live");
    await eventually(() => expect(changes.some((e) => e?.event === "repo.created" && e.data.includes("acme/back-live"))).toBe(true));
    expect((feed as unknown as { poller: number | null }).poller).toBeNull();  // no more polling once live
    feed.stop();
  }, 15000);

  it("polls when the stream is unreachable or polling is chosen", async () => {
    const down = feedFor(`http://127.0.0.1:${await freePort()}`, true);
    down.feed.start();
    await eventually(() => expect(down.feed.mode).toBe("poll"));
    expect(down.feed.reason).toContain("the event stream is unreachable");
    expect(down.intervals).toHaveLength(1);
    down.feed.stop();
    const chosen = feedFor(server.url, false);
    chosen.feed.start();
    expect(chosen.modes).toEqual([["stopped", ""], ["poll", "polling is chosen in the settings"]]);
    chosen.feed.stop();
  });
});
