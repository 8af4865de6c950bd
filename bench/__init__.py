"""Load benchmarks of the pool; `python -m bench.load --help`. Results are recorded in bench/RESULTS.md."""
