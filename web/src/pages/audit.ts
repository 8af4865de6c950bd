// The audit log (admin): filter, page by sequence number, export CSV or JSONL.
import { ApiError, get, send, type AuditEvent } from "../api";
import { badge, dateTime, downloadBlob, el, field, notice, replace, table, text } from "../dom";
import type { Page } from "../page";

const PAGE_SIZE = 50;
const FILTERS = ["type", "actor", "target", "repo", "since", "until"] as const;

export const auditPage: Page = {
  path: "audit",
  title: "Audit log",
  mount(root, { live }) {
    if (!live.state.admin) {
      root.append(notice("info", "The audit log needs the admin token: sign in at the top of the page."));
      return () => undefined;
    }
    const inputs = {
      type: el("input", { name: "type", placeholder: "lease.* or task.created" }),
      actor: el("input", { name: "actor", placeholder: "w_… or system" }),
      target: el("input", { name: "target", placeholder: "t_… or owner/name" }),
      repo: el("input", { name: "repo", placeholder: "owner/name" }),
      since: el("input", { name: "since", type: "datetime-local" }),
      until: el("input", { name: "until", type: "datetime-local" }),
    };
    const form = el("form", { class: "filters", "data-testid": "audit-filters" },
      field("Type", inputs.type), field("Actor", inputs.actor), field("Target", inputs.target),
      field("Repository", inputs.repo), field("Since", inputs.since), field("Until", inputs.until),
      el("button", { type: "submit" }, "Apply"));
    const exportMessage = el("span", { class: "form-error", role: "alert" });
    const exports = el("div", { class: "actions" },
      el("button", { type: "button", "data-export": "csv", onclick: () => void exportAs("csv") }, "Export CSV"),
      el("button", { type: "button", "data-export": "jsonl", onclick: () => void exportAs("jsonl") }, "Export JSONL"),
      exportMessage);
    const results = el("div", {});
    const pager = el("div", { class: "pager" });
    root.append(form, exports, results, pager);
    const cursors: number[] = [0]; // `after` of each page seen, for going back

    const query = (): Record<string, string> => {
      const q: Record<string, string> = {};
      for (const key of FILTERS) {
        const value = inputs[key].value.trim();
        if (!value) continue;
        q[key] = key === "since" || key === "until" ? new Date(value).toISOString() : value;
      }
      return q;
    };

    const load = async (): Promise<void> => {
      replace(results, notice("loading", "loading events…"));
      try {
        const after = cursors[cursors.length - 1] ?? 0;
        const page = await get("/v1/audit/events", { query: { ...query(), after, limit: PAGE_SIZE } });
        show(page.events);
        replace(pager,
          el("button", { type: "button", disabled: cursors.length === 1, onclick: () => { cursors.pop(); void load(); } }, "← Previous"),
          el("span", { class: "muted" }, `page ${cursors.length}`),
          el("button", { type: "button", disabled: page.next_cursor === null,
                         onclick: () => { cursors.push(page.next_cursor!); void load(); } }, "Next →"));
      } catch (error) {
        replace(results, notice("error", (error as Error).message));
      }
    };

    const show = (events: AuditEvent[]): void => {
      if (events.length === 0) return replace(results, notice("empty", "no event matches these filters"));
      replace(results, table(["Seq", "Time", "Type", "Actor", "Target", "Details"], events.map((e) => [
        text(e.seq), text(dateTime(e.ts)), badge(e.type, e.type.split(".")[0]), text(e.actor), text(e.target ?? e.repo),
        el("code", { class: "details" }, JSON.stringify(e.details)),
      ]), "audit-table", ["", "hide-narrow", "", "hide-narrow", "", "hide-narrow"]));
    };

    const exportAs = async (format: "csv" | "jsonl"): Promise<void> => {
      exportMessage.textContent = "";
      try {
        const response = await send("GET", "/v1/audit/events", {
          query: { ...query(), format }, accept: format === "csv" ? "text/csv" : "application/x-ndjson" });
        const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
        downloadBlob(await response.blob(), `owp-audit-${stamp}.${format}`);
      } catch (error) {
        exportMessage.textContent = error instanceof ApiError && (error.status === 400 || error.status === 422)
          ? `export as ${format} is not supported by this server yet` : (error as Error).message;
      }
    };

    form.addEventListener("submit", (e) => { e.preventDefault(); cursors.splice(1); void load(); });
    void load();
    return () => undefined;
  },
};
