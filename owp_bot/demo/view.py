"""The demo's progress in the terminal: workers, tasks by status and each repo's review budget (rich)."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from owp_bot.demo.api import DemoStatus

STATE_STYLE = {"idle": "cyan", "working": "green", "silent": "yellow", "starting": "dim", "stopped": "dim"}
TASK_ORDER = ("ready", "offered", "leased", "in_progress", "blocked", "pr_opened", "merged", "cancelled")


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def render(status: DemoStatus) -> RenderableType:
    """Fits a 80x24 terminal with six workers: compact tables, tasks on one line."""
    headline = Text.assemble(
        ("OWP Pool demo ", "bold"), (status.state, "green" if status.state == "running" else "yellow"),
        f" · simulated time {_clock(status.simulated_seconds)} at x{status.speed:g}",
        *((f" · error: {status.error}", "red") for _ in [status.error] if status.error),
    )
    workers = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    workers.add_column("worker", no_wrap=True, max_width=20)
    workers.add_column("state", no_wrap=True)
    workers.add_column("working on", ratio=1, no_wrap=True, overflow="ellipsis")
    for column in ("acc", "dec", "PRs", "mrg", "cls", "quiet"):
        workers.add_column(column, justify="right", no_wrap=True)
    for w in status.workers:
        numbers = (w.accepted, w.declined, w.prs, w.merged, w.closed, w.silences)
        workers.add_row(w.name, Text(w.state, STATE_STYLE.get(w.state, "")), "; ".join(w.working_on) or "-",
                        *(str(n) for n in numbers))
    shown = [s for s in TASK_ORDER if s in status.tasks] + sorted(set(status.tasks) - set(TASK_ORDER))
    by_status = " · ".join(f"{name} {status.tasks[name]}" for name in shown)
    tasks = Text.assemble(("tasks ", "bold"), by_status or "-")
    budgets = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="review budgets: open PRs + leases + offers",
                    title_justify="left")
    for column in ("repo", "open PRs", "leases", "offers", "in flight"):
        budgets.add_column(column, justify="left" if column == "repo" else "right")
    for repo in status.repos:
        b = repo.budget
        over = b.in_flight > b.max_open_prs
        budgets.add_row(repo.repo, str(b.open_prs), str(b.leases), str(b.offers),
                        Text(f"{b.in_flight}/{b.max_open_prs}", "red" if over else ""))
    counts = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(status.counts.items())
                        if k != "heartbeats")
    return Group(headline, workers, tasks, budgets, Text(counts or "starting…", "dim"))


def summary(status: DemoStatus) -> str:
    """One line for logs: state, simulated time, tasks by status, budgets in use."""
    tasks = ", ".join(f"{k} {v}" for k, v in status.tasks.items())
    budgets = ", ".join(f"{r.repo} {r.budget.in_flight}/{r.budget.max_open_prs}" for r in status.repos)
    when = _clock(status.simulated_seconds)
    return f"demo {status.state} at {when}: tasks {tasks or '-'}; budgets {budgets or '-'}"
