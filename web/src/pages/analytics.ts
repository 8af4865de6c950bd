// Analytics from the trust/analytics endpoints: completion time, throughput, utilisation, merge rate over
// time, and the bottlenecks the server names (with its reasons).
import type { Chart } from "chart.js";
import { get, type Schemas } from "../api";
import { chartOn, lines, type Series } from "../charts";
import { el, field, notice, replace, select } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";

type Metrics = Schemas["AnalyticsMetrics"];
type Point = Schemas["SeriesPoint"];

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? Math.round((100 * part) / whole) : null;
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${Math.round(value * 100)}%`;
}

function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

function stat(label: string, value: string | number, hint?: string): HTMLElement {
  return el("div", { class: "stat", title: hint }, el("span", { class: "stat-value" }, value),
    el("span", { class: "stat-label" }, label));
}

function summary(m: Metrics): HTMLElement {
  return el("div", {},
    el("div", { class: "stats" },
      stat("tasks completed", m.tasks_completed),
      stat("avg completion", duration(m.avg_completion_time), "from lease granted to PR opened"),
      stat("avg time to merge", duration(m.avg_time_to_merge)),
      stat("worker utilisation", percent(m.worker_utilization)),
      stat("PR merge rate", percent(m.pr_merge_rate)),
      stat("offer acceptance", percent(m.offer_acceptance_rate)),
      stat("lease expiry rate", percent(m.lease_expiry_rate)),
      stat("budget saturation", percent(m.review_budget_saturation)),
      stat("active workers", m.active_workers)),
    el("h3", {}, "Bottlenecks"),
    m.bottlenecks.length === 0 ? notice("empty", "no bottleneck stands out in this period") :
      el("ul", { class: "bottlenecks", "data-testid": "bottlenecks" }, m.bottlenecks.map((name) =>
        el("li", {}, el("strong", {}, name.replace(/_/g, " ")), ": ", m.bottleneck_reasons[name] ?? ""))));
}

export const analyticsPage: Page = {
  path: "analytics",
  title: "Analytics",
  mount(root, { live }) {
    const period = select("period", [["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"]], "7d");
    const bucket = select("bucket", [["day", "by day"], ["hour", "by hour"]], "day");
    const repo = select("repo", [["", "all repositories"]]);
    const fillRepos = (state: State): void => {  // the repos may load after the page mounts (opened by its URL)
      const names = (state.repos ?? []).map((r) => r.repo);
      if (repo.options.length === names.length + 1) return;
      const current = repo.value;
      replace(repo, el("option", { value: "" }, "all repositories"), names.map((r) => el("option", { value: r }, r)));
      repo.value = names.includes(current) ? current : "";
    };
    fillRepos(live.state);
    const form = el("form", { class: "filters" }, field("Period", period), field("Buckets", bucket), field("Repository", repo));
    const pool = el("div", { class: "card card-wide", "data-testid": "analytics-summary" });
    const canvases = {
      throughput: el("canvas", { role: "img", "aria-label": "throughput" }),
      leases: el("canvas", { role: "img", "aria-label": "leases granted and expired" }),
      rates: el("canvas", { role: "img", "aria-label": "merge and offer acceptance rates" }),
    };
    const chartsState = el("div", { class: "card-wide" });
    const chartCards = el("div", { class: "grid" },
      el("div", { class: "card" }, el("h2", {}, "Throughput"), el("div", { class: "chart" }, canvases.throughput)),
      el("div", { class: "card" }, el("h2", {}, "Leases: granted vs expired"), el("div", { class: "chart" }, canvases.leases)),
      el("div", { class: "card" }, el("h2", {}, "Merge rate and offer acceptance (%)"), el("div", { class: "chart" }, canvases.rates)));
    root.append(form, el("div", { class: "grid" }, pool, chartsState), chartCards);
    let charts: Chart[] = [];
    let generation = 0;

    const load = async (): Promise<void> => {
      const mine = ++generation;
      replace(pool, el("h2", {}, repo.value || "Pool"), notice("loading", "loading analytics…"));
      replace(chartsState, notice("loading", "loading the time series…"));
      const [owner, name] = repo.value.split("/");
      const query = { period: period.value as "7d" | "30d" | "90d" };
      const [metrics, series] = await Promise.allSettled([
        repo.value ? get("/v1/analytics/repositories/{owner}/{name}", { path: { owner: owner!, name: name! }, query }).then((a) => a.metrics)
          : get("/v1/analytics/pool", { query }).then((a) => a.metrics),
        get("/v1/analytics/timeseries", { query: { ...query, bucket: bucket.value as "day" | "hour", repo: repo.value || undefined } }),
      ]);
      if (mine !== generation) return;
      replace(pool, el("h2", {}, `${repo.value || "Pool"} · last ${period.value}`),
        metrics.status === "fulfilled" ? summary(metrics.value) : notice("error", String((metrics.reason as Error).message)));
      for (const chart of charts) chart.destroy();
      charts = [];
      chartCards.hidden = true;
      if (series.status === "rejected") return replace(chartsState, notice("error", String((series.reason as Error).message)));
      const points = series.value.points;
      if (points.every((p) => p.tasks_completed + p.leases_granted + p.offers_made + p.prs_merged + p.prs_closed === 0)) {
        return replace(chartsState, notice("empty", "nothing happened in this period, so there is nothing to chart yet"));
      }
      replace(chartsState);
      chartCards.hidden = false;
      const labels = points.map((p) => bucket.value === "hour" ? new Date(p.ts).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit" })
        : new Date(p.ts).toLocaleDateString([], { month: "short", day: "numeric" }));
      const pick = (label: string, key: keyof Omit<Point, "ts">): Series => ({ label, values: points.map((p) => p[key]) });
      charts = [
        chartOn(canvases.throughput, lines(labels, [pick("tasks completed", "tasks_completed"), pick("PRs merged", "prs_merged")])),
        chartOn(canvases.leases, lines(labels, [pick("granted", "leases_granted"), pick("expired", "leases_expired")], "bar")),
        chartOn(canvases.rates, lines(labels, [
          { label: "merge rate", values: points.map((p) => ratio(p.prs_merged, p.prs_merged + p.prs_closed)) },
          { label: "offers accepted", values: points.map((p) => ratio(p.offers_accepted, p.offers_made)) },
        ], "line", true)),
      ];
    };
    form.addEventListener("change", () => void load());
    const unsubscribe = live.subscribe(fillRepos);
    void load();
    return () => { unsubscribe(); generation++; for (const chart of charts) chart.destroy(); };
  },
};
