# The two commands of the README. Each does its own set-up on a fresh machine.
.PHONY: demo test setup lint

demo: setup
	scripts/build-frontends.sh
	.venv/bin/owp demo $(ARGS)

test:
	scripts/test.sh $(ARGS)

setup:
	scripts/setup.sh

lint: setup
	.venv/bin/ruff check owp_bot tests bench
	.venv/bin/mypy
