"""The load benchmark runs end to end: a real server subprocess, seeding, the ceiling, the worker loop and
the invariant replay. No timing assertions: speed is measured by `python -m bench.load`, not by tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent


def run_bench(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            *extra,
            "--workers",
            "12",
            "--tasks",
            "300",
            "--duration",
            "3",
            "--ceiling-seconds",
            "0.5",
            "--connections",
            "4",
            "--concurrency",
            "8",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text(encoding="utf-8"))


def test_bench_runs_briefly_and_keeps_the_invariants(tmp_path: Path) -> None:
    done, result = run_bench(tmp_path)
    assert result["invariants_ok"] and result["invariant_breaks"] == []
    assert result["errors"] == {}
    assert result["leases_granted"] > 0 and result["offers_created"] > 0
    assert {"offers", "accept", "work", "heartbeat"} <= set(result["routes"])
    assert done.stdout.strip().splitlines()[-1].startswith("SUMMARY OK mode=loop W=12 M=300")


def test_full_review_budgets_keep_the_invariants(tmp_path: Path) -> None:
    """--max-open-prs 1 on 3 repos: at most 3 tasks in flight, the replay checks every budget at every event."""
    _, result = run_bench(tmp_path, "--max-open-prs", "1", "--repos", "3")
    assert result["invariants_ok"] and result["errors"] == {} and result["leases_granted"] > 0


def test_claim_mode_only_leases_and_finishes(tmp_path: Path) -> None:
    done, result = run_bench(tmp_path, "--mode", "claim", "--per-request", "2", "--statements")
    assert result["invariants_ok"] and result["errors"] == {}
    assert result["leases_granted"] > 0 and result["offers_created"] == 0
    assert set(result["routes"]) == {"work", "pr_opened"}
    assert done.stdout.strip().splitlines()[-1].startswith("SUMMARY OK mode=claim W=12 M=300")
    assert_statements_timed(result)


def assert_statements_timed(result: dict[str, Any]) -> None:
    """--statements: the loop's statements, counted in the server (bench/statements.py)."""
    timings = result["statements"]
    assert timings["statements"]["lease_next"]["count"] >= result["leases_granted"]  # one per lease granted
    assert timings["statements"]["(events inserted)"]["count"] > 0
    assert timings["transactions"]["count"] > 0 and timings["transactions"]["operations"] >= timings[
        "transactions"]["count"]


def test_claim_mode_on_postgres_uses_a_schema_of_its_own_and_drops_it(tmp_path: Path) -> None:
    done, result = run_bench(tmp_path, "--mode", "claim", "--postgres", TEST_DATABASE_URL, "--statements")
    assert result["store"] == "postgresql" and result["invariants_ok"] and result["errors"] == {}
    assert result["leases_granted"] > 0
    assert_statements_timed(result)
    assert done.stdout.strip().splitlines()[-1].endswith("store=postgresql")

    async def schema_exists() -> bool:
        conn = await asyncpg.connect(TEST_DATABASE_URL)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", result["schema"]))
        finally:
            await conn.close()

    assert result["schema"].startswith("owp_bench_") and not asyncio.run(schema_exists())


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_the_store_claim_loop_runs_without_http(store: str) -> None:
    """bench.store_claim: the claim loop on the store alone, on either backend, no task leased twice."""
    on_postgres = ["--postgres", TEST_DATABASE_URL] if store == "postgres" else []
    done = subprocess.run(
        [sys.executable, "-m", "bench.store_claim", "--workers", "4", "--tasks", "200", "--seconds", "1",
         *on_postgres], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary, *statements = done.stdout.splitlines()
    assert summary.startswith(f"{'postgresql' if on_postgres else 'sqlite'}: ") and "leases/s without HTTP" in summary
    assert {line.split()[0] for line in statements} >= {"lease_next", "task_report_held", "worker_claimant"}
