/** Offer and lease countdowns: formatting, elements that tick, and a real offer's deadline. */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Countdowns, formatRemaining, remainingSeconds } from "../src/countdown";
import { PoolServer } from "./pool-server";
import { registeredWorker } from "./helpers";

const T0 = Date.parse("2026-01-01T12:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

describe("formatRemaining", () => {
  it("counts down in the largest sensible units", () => {
    expect(formatRemaining(at(300), T0)).toBe("5m 00s");
    expect(formatRemaining(at(65.9), T0)).toBe("1m 05s");
    expect(formatRemaining(at(3 * 3600 + 120), T0)).toBe("3h 02m");
    expect(formatRemaining(at(2 * 86400 + 5 * 3600), T0)).toBe("2d 5h");
    expect(formatRemaining(at(0), T0)).toBe("expired");
    expect(formatRemaining(at(-10), T0)).toBe("expired");
    expect(formatRemaining(null, T0)).toBe("expired");
    expect(formatRemaining("not a date", T0)).toBe("expired");
    expect(remainingSeconds(at(90), T0)).toBe(90);
  });

  it("updates its elements on each tick and marks the last minute", () => {
    const countdowns = new Countdowns();
    const el = document.createElement("div");
    countdowns.add(el, at(62), "offer expires in", "offer expired", T0);
    expect(el.textContent).toBe("offer expires in 1m 02s");
    expect(el.classList.contains("owp-urgent")).toBe(false);
    countdowns.tick(T0 + 3000);
    expect(el.textContent).toBe("offer expires in 0m 59s");
    expect(el.classList.contains("owp-urgent")).toBe(true);
    countdowns.tick(T0 + 62000);
    expect(el.textContent).toBe("offer expired");
    countdowns.clear();
    countdowns.tick(T0);
    expect(el.textContent).toBe("offer expired");
  });
});

describe("a real offer's countdown", () => {
  let server: PoolServer;

  beforeAll(async () => {
    server = await PoolServer.start({ OWP_OFFER_TTL: "90" });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("starts at the server's offer TTL and runs out at expires_at", async () => {
    await server.repo("acme/clock");
    await server.task("acme/clock", "tick", { required_skills: ["clocks"] });
    const { client } = await registeredWorker(server, "eve", ["clocks"]);
    const [offer] = (await client.offers()).offers;
    const now = Date.now();
    const left = remainingSeconds(offer.expires_at, now);
    expect(left).toBeGreaterThan(80);
    expect(left).toBeLessThanOrEqual(90);
    expect(formatRemaining(offer.expires_at, now)).toMatch(/^1m [23]\ds$/);
    expect(formatRemaining(offer.expires_at, Date.parse(offer.expires_at))).toBe("expired");
  });
});
