import type { Chart } from "chart.js";
import { chartOn, doughnut, updateDoughnut } from "../charts";
import { el, notice, replace } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";
import { budgetRow, feedItem, listState } from "./common";

const TASK_ORDER = ["ready", "offered", "leased", "in_progress", "blocked", "pr_opened", "merged", "cancelled"];

function stat(label: string, value: number | string, testid: string): HTMLElement {
  return el("div", { class: "stat", "data-testid": testid }, el("span", { class: "stat-value" }, value),
    el("span", { class: "stat-label" }, label));
}

export const overviewPage: Page = {
  path: "",
  title: "Overview",
  mount(root, { live }) {
    const workers = el("div", { class: "stats", "data-testid": "worker-stats" });
    const taskCounts = el("div", { class: "stats", "data-testid": "task-stats" });
    const canvas = el("canvas", { "aria-label": "tasks by status", role: "img" });
    const budgets = el("div", { class: "budgets", "data-testid": "budgets" });
    const feed = el("ol", { class: "feed", "data-testid": "feed", "aria-live": "polite" });
    const feedState = el("div", {});
    let chart: Chart | null = null;
    root.append(
      el("div", { class: "grid" },
        el("div", { class: "card" }, el("h2", {}, "Workers"), workers),
        el("div", { class: "card" }, el("h2", {}, "Tasks by status"), taskCounts,
          el("div", { class: "chart chart-small" }, canvas)),
        el("div", { class: "card" }, el("h2", {}, "Review budgets"), budgets),
        el("div", { class: "card card-wide" }, el("h2", {}, "Live activity"), feedState, feed)));

    const draw = (state: State): void => {
      const ws = state.workers;
      replace(workers, listState(state, "workers", ws, "no workers yet — they register with POST /v1/workers/register") ??
        [stat("online", ws!.filter((w) => w.online).length, "workers-online"),
         stat("idle", ws!.filter((w) => w.online && w.status === "idle").length, "workers-idle"),
         stat("working", ws!.filter((w) => w.online && w.status === "working").length, "workers-working"),
         stat("offline", ws!.filter((w) => !w.online).length, "workers-offline")]);
      const ts = state.tasks;
      const counts = TASK_ORDER.map((s) => [s, (ts ?? []).filter((t) => t.status === s).length] as const).filter(([, n]) => n > 0);
      replace(taskCounts, listState(state, "tasks", ts, "no tasks yet — label an issue pool:ready or import tasks") ??
        counts.map(([s, n]) => stat(s.replace(/_/g, " "), n, `tasks-${s}`)));
      canvas.parentElement!.hidden = counts.length === 0;
      if (counts.length > 0) {
        if (chart) updateDoughnut(chart, counts.map(([s]) => s), counts.map(([, n]) => n));
        else chart = chartOn(canvas, doughnut(counts.map(([s]) => s), counts.map(([, n]) => n)));
      }
      replace(budgets, listState(state, "repos", state.repos, "no repositories yet — an admin adds one on Repositories") ??
        state.repos!.map(budgetRow));
      replace(feedState, state.feed.length === 0 ? notice("empty", "no activity yet; events appear here as they happen") : null);
    };
    const unsubscribe = live.subscribe((state) => {
      replace(feed, state.feed.slice(0, 100).map((event) => feedItem(event, state)));  // names resolve as lists load
      draw(state);
    });
    replace(feed, live.state.feed.slice(0, 100).map((event) => feedItem(event, live.state)));
    draw(live.state);
    return () => { unsubscribe(); chart?.destroy(); };
  },
};
