import { get, post, type Worker } from "../api";
import { ago, badge, dateTime, el, field, notice, replace, select, table, text } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";
import { listState } from "./common";

const TIERS: [string, string][] = [["untrusted", "untrusted"], ["basic", "basic"], ["trusted", "trusted"]];

export const workersPage: Page = {
  path: "workers",
  title: "Workers",
  mount(root, { live }) {
    const list = el("div", {});
    const detail = el("aside", { class: "card detail", "data-testid": "worker-detail", hidden: true });
    root.append(el("div", { class: "split" }, list, detail));

    const draw = (state: State): void => {
      const blocked = listState(state, "workers", state.workers, "no workers yet — they register with POST /v1/workers/register");
      if (blocked) return replace(list, blocked);
      replace(list, table(["Worker", "Status", "Last heartbeat", "Skills", "Capacity in use", "Trust", "Reputation"],
        state.workers!.map((w) => [
          el("a", { href: "#", "data-worker": w.worker_id, onclick: (e: Event) => { e.preventDefault(); void openDetail(w); } },
            w.name, w.github_handle ? el("small", { class: "muted" }, ` @${w.github_handle}`) : null),
          badge(w.status),
          el("time", { datetime: w.last_heartbeat, title: dateTime(w.last_heartbeat) }, ago(w.last_heartbeat)),
          text(w.skills.join(", ") || "—"),
          text(`${w.points_in_use}/${w.capacity_points} pts · ${w.tasks_in_use}/${w.max_concurrent_tasks} tasks`),
          badge(w.trust_tier), text(w.reputation.toFixed(0)),
        ]), "workers-table", ["", "", "hide-narrow", "hide-narrow", "", "hide-narrow", "hide-narrow"]));
    };

    const openDetail = async (worker: Worker): Promise<void> => {
      detail.hidden = false;
      const reputation = el("div", {}, notice("loading", "loading reputation…"));
      replace(detail, el("h2", {}, worker.name), el("p", { class: "muted" }, worker.worker_id),
        worker.note ? el("p", {}, `“${worker.note}”`) : null,
        el("h3", {}, "Reputation"), reputation,
        live.state.admin ? trustForm(worker) : null);
      try {
        const r = await get("/v1/workers/{worker_id}/reputation", { path: { worker_id: worker.worker_id } });
        const m = r.metrics;
        const pct = (v: number | null | undefined): string => v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`;
        replace(reputation, el("dl", { class: "facts", "data-testid": "reputation" },
          el("dt", {}, "Score"), el("dd", {}, `${r.reputation_score.toFixed(0)} / 100`),
          el("dt", {}, "Trust tier"), el("dd", {}, badge(r.trust_tier)),
          el("dt", {}, "Tasks"), el("dd", {}, `${m.total_tasks} taken · ${m.completed} completed · ${m.expired} expired · ${m.released} released`),
          el("dt", {}, "Completion rate"), el("dd", {}, pct(m.completion_rate)),
          el("dt", {}, "On time"), el("dd", {}, pct(m.on_time_delivery)),
          el("dt", {}, "PR merge rate"), el("dd", {}, `${pct(m.pr_merge_rate)} (${m.merged} merged, ${m.closed_unmerged} closed)`),
          el("dt", {}, "Reviews"), el("dd", {}, `${m.approved} approved · ${m.changes} changes requested`)));
      } catch (error) {
        replace(reputation, notice("error", (error as Error).message));
      }
    };

    const trustForm = (worker: Worker): HTMLElement => {
      const tier = select("tier", TIERS, worker.trust_tier);
      const reason = el("input", { name: "reason", required: true, maxlength: 500, placeholder: "why (kept in the audit log)" });
      const message = el("span", { class: "form-message", role: "status" });
      const form = el("form", { class: "inline-form", "data-testid": "trust-form" }, field("Trust tier", tier),
        field("Reason", reason), el("button", { type: "submit" }, "Set tier"), message);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        post("/v1/workers/{worker_id}/trust-tier", { tier: tier.value as Worker["trust_tier"], reason: reason.value.trim() },
             { path: { worker_id: worker.worker_id } })
          .then(async () => {
            await live.refresh();
            await openDetail(live.state.workers?.find((w) => w.worker_id === worker.worker_id) ?? worker);
          })
          .catch((error: Error) => { message.textContent = error.message; message.dataset.kind = "error"; });
      });
      return form;
    };

    const unsubscribe = live.subscribe(draw);
    draw(live.state);
    return unsubscribe;
  },
};
