"""The load benchmark runs end to end: a real server subprocess, seeding, the ceiling, the worker loop and
the invariant replay. No timing assertions: speed is measured by `python -m bench.load`, not by tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_briefly_and_keeps_the_invariants(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
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
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["invariants_ok"] and result["invariant_breaks"] == []
    assert result["errors"] == {}
    assert result["leases_granted"] > 0 and result["offers_created"] > 0
    assert {"offers", "accept", "work", "heartbeat"} <= set(result["routes"])
    assert done.stdout.strip().splitlines()[-1].startswith("SUMMARY OK W=12 M=300")
