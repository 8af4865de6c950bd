// System: health, the live stream, webhook deliveries (retry failed ones), rate-limit rejections.
import { ApiError, get, post, send, type Schemas } from "../api";
import { ago, append, badge, dateTime, el, notice, replace, table, text } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";

type Delivery = Schemas["DeliveryRecord"];

/** Failed deliveries read at a time; "Show more" reads the next page after the last one shown. */
const DELIVERY_PAGE = 100;

function unavailable(error: unknown, what: string): HTMLElement {
  if (error instanceof ApiError && error.missing) return notice("info", `${what} is not served by this server yet.`);
  return notice("error", error instanceof Error ? error.message : String(error));
}

export const systemPage: Page = {
  path: "system",
  title: "System",
  mount(root, { live }) {
    const health = el("div", { class: "card", "data-testid": "health" }, el("h2", {}, "Health"), notice("loading", "checking…"));
    const stream = el("div", { class: "card" }, el("h2", {}, "Event stream"));
    const streamFacts = el("dl", { class: "facts" });
    stream.append(streamFacts);
    const deliveries = el("div", { class: "card card-wide", "data-testid": "deliveries" });
    const limits = el("div", { class: "card card-wide", "data-testid": "ratelimits" });
    root.append(el("div", { class: "grid" }, health, stream, deliveries, limits));

    const drawStream = (state: State): void => replace(streamFacts,
      el("dt", {}, "Connection"), el("dd", {}, badge(state.connection)),
      el("dt", {}, "Last event"), el("dd", {}, state.lastSeq ? `#${state.lastSeq}` : "none yet"),
      el("dt", {}, "View"), el("dd", {}, state.admin ? "admin (everything)" : "public"));

    const loadHealth = async (): Promise<void> => {
      const [alive, ready] = await Promise.allSettled([get("/healthz"), send("GET", "/readyz").then((r) => r.json())]);
      replace(health, el("h2", {}, "Health"), el("dl", { class: "facts" },
        el("dt", {}, "Process"), el("dd", {}, alive.status === "fulfilled" ? badge("ok") : badge("down", "error")),
        el("dt", {}, "Version"), el("dd", {}, alive.status === "fulfilled" ? alive.value.version : "—"),
        el("dt", {}, "Database"), el("dd", {}, ready.status === "fulfilled" ? badge("ready", "ok") : badge("unavailable", "error"))));
    };

    // What the card shows, and where its next page starts ("" once the last page is shown). A retry reloads as
    // many as were shown; `reads` counts loads, so that a page that arrives after a newer load is dropped.
    let shown: Delivery[] = [];
    let nextCursor = "";
    let reads = 0;

    const drawDeliveries = (body: HTMLElement): void => {
      if (shown.length === 0) return replace(body, notice("empty", "no failed deliveries"));
      replace(body, table(["Delivery", "Event", "Repository", "Attempts", "Error", "Received", ""], shown.map((d) => [
        text(d.delivery_id), text(d.action ? `${d.event}.${d.action}` : d.event), text(d.repo), text(d.attempts),
        text(d.detail), el("time", { datetime: d.received_at, title: dateTime(d.received_at) }, ago(d.received_at)),
        el("button", { type: "button", "data-retry": d.delivery_id, onclick: () => void retry(d.delivery_id) }, "Retry"),
      ]), "deliveries-table", ["", "", "hide-narrow", "hide-narrow", "", "hide-narrow", ""]),
      el("div", { class: "pager" },
        el("span", { class: "muted", "data-testid": "deliveries-count" },
          `${shown.length} shown${nextCursor ? "; older ones follow" : ""}`),
        nextCursor ? el("button", { type: "button", "data-testid": "deliveries-more", onclick: () => void more(body) },
          `Show ${DELIVERY_PAGE} more`) : null));
    };

    /** Reads failed deliveries from the newest until `wanted` are read or none is left. */
    const readDeliveries = async (cursor: string, wanted: number): Promise<[Delivery[], string]> => {
      const found: Delivery[] = [];
      do {
        const page = await get("/v1/github/deliveries", { query: { outcome: "failed", limit: DELIVERY_PAGE, cursor } });
        found.push(...page.deliveries);
        cursor = page.next_cursor ?? "";
      } while (cursor && found.length < wanted);
      return [found, cursor];
    };

    const more = async (body: HTMLElement): Promise<void> => {
      const read = reads;
      const button = body.querySelector<HTMLButtonElement>("[data-testid=deliveries-more]");
      if (button) button.disabled = true;
      try {
        const [found, cursor] = await readDeliveries(nextCursor, 1);
        if (read !== reads) return;
        shown = [...shown, ...found];
        nextCursor = cursor;
        drawDeliveries(body);
      } catch (error) {
        if (read !== reads) return;
        if (button) button.disabled = false;  // the admin may ask again
        body.append(unavailable(error, "The webhook delivery log"));
      }
    };

    const loadDeliveries = async (): Promise<void> => {
      const read = ++reads;
      replace(deliveries, el("h2", {}, "Failed webhook deliveries"));
      if (!live.state.admin) return void deliveries.append(notice("info", "Sign in with the admin token to see webhook deliveries."));
      const body = el("div", {}, notice("loading", "loading deliveries…"));
      deliveries.append(body);
      try {
        const [found, cursor] = await readDeliveries("", Math.max(shown.length, DELIVERY_PAGE));
        if (read !== reads) return;
        [shown, nextCursor] = [found, cursor];
        drawDeliveries(body);
      } catch (error) {
        if (read === reads) replace(body, unavailable(error, "The webhook delivery log"));
      }
    };

    const retry = async (deliveryId: string): Promise<void> => {
      try {
        const answer = await post("/v1/github/deliveries/{delivery_id}/retry", undefined, { path: { delivery_id: deliveryId } });
        await loadDeliveries();
        deliveries.append(notice("info", `retried ${answer.delivery_id}: ${answer.outcome}${answer.detail ? ` — ${answer.detail}` : ""}`));
      } catch (error) {
        await loadDeliveries();  // the attempt is counted even when it fails again
        deliveries.append(notice("error", `retry of ${deliveryId} failed: ${(error as Error).message}`));
      }
    };

    const loadLimits = async (): Promise<void> => {
      replace(limits, el("h2", {}, "Rate limits"));
      if (!live.state.admin) return void limits.append(notice("info", "Sign in with the admin token to see rate-limit rejections."));
      try {
        const report = await get("/v1/system/ratelimits");
        append(limits, [
          el("h3", {}, "Limits"),
          report.limits.length ? table(["Credential", "Requests", "Per"], report.limits.map((r) => [
            text(r.credential), text(r.requests), text(`${r.per_seconds}s`)]), "ratelimit-rules") : notice("empty", "no limits configured"),
          report.exempt.length ? el("p", { class: "muted" }, `exempt: ${report.exempt.join(", ")}`) : null,
          el("h3", {}, "Rejections by route"),
          report.rejections.length ? table(["Route", "Credential", "Rejected"], report.rejections.map((r) => [
            text(r.route), text(r.credential), text(r.rejected)]), "ratelimit-rejections") : notice("empty", "no request was rejected"),
          el("h3", {}, "Recent rejections"),
          report.recent.length ? table(["Time", "Route", "Credential"], report.recent.map((r) => [
            el("time", { datetime: r.ts }, dateTime(r.ts)), text(r.route), text(r.credential)]), "ratelimit-recent")
            : notice("empty", "none recently")]);
      } catch (error) {
        limits.append(unavailable(error, "The rate-limit report"));
      }
    };

    const unsubscribe = live.subscribe(drawStream);
    drawStream(live.state);
    void loadHealth();
    void loadDeliveries();
    void loadLimits();
    return unsubscribe;
  },
};
