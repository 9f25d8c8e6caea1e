# chaoslab: `make setup` once, then `make test`, or `make lab LAB=<name>`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB    ?= idempotency-keys
RUNS   ?= 20
LOAD   ?= 0
JOBS   ?= 1
# The harness's own tests run in two workers, a test file per worker at a time (each run they
# start is its own: runs never touch each other, which test_shared_machine.py proves).
# Lab proofs (every starter, solution, wrong and also-correct fix) run in parallel workers:
# their verdicts hold on a loaded machine, which is what `make flake LOAD=2` shows.
PROOF_WORKERS ?= 3
# On docker every lab run is a dozen containers and a Toxiproxy container on the same 2 cores:
# two labs at a time, not three (three overloaded retry-storm's probe past its 2 s deadline).
DOCKER_PROOF_WORKERS ?= 2

.PHONY: setup test test-wrong test-unit test-docker docker-setup lab list bench flake flake-table flake-prune lint clean

setup: $(BIN)/chaoslab
	$(BIN)/chaoslab setup

$(BIN)/chaoslab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

test: $(BIN)/chaoslab
	$(BIN)/python -m pytest -m "not docker" --ignore=tests/labs -n 2 --dist loadfile
	$(BIN)/python -m pytest tests/labs -n $(PROOF_WORKERS) --dist loadgroup -m "not alone and not wrong_fix"
	$(BIN)/python -m pytest tests/labs -m "alone and not wrong_fix"

# Every lab rejects each of its wrong fixes: three lab proofs in four, so a target of their own
# (make test stays near 5 minutes on 2 cores); CI runs it after make test.
test-wrong: $(BIN)/chaoslab
	$(BIN)/python -m pytest tests/labs -n $(PROOF_WORKERS) --dist loadgroup -m "wrong_fix and not alone"
	$(BIN)/python -m pytest tests/labs -m "wrong_fix and alone"

# Every lab on the docker backend too. Starts an engine where none runs and you are root
# (installing Debian's docker.io), and builds the images once per machine.
test-docker: docker-setup
	CHAOSLAB_REQUIRE_DOCKER=1 $(BIN)/python -m pytest -m docker --ignore=tests/labs --ignore=tests/docker/test_labs_on_docker.py
	CHAOSLAB_REQUIRE_DOCKER=1 $(BIN)/python -m pytest tests/docker/test_labs_on_docker.py -n $(DOCKER_PROOF_WORKERS) --dist loadgroup -m "not alone"
	CHAOSLAB_REQUIRE_DOCKER=1 $(BIN)/python -m pytest tests/docker/test_labs_on_docker.py -m alone

docker-setup: $(BIN)/chaoslab
	bash scripts/docker-engine.sh
	$(BIN)/python -m harness.images

test-unit: $(BIN)/chaoslab
	$(BIN)/python -m pytest tests/unit

lab: $(BIN)/chaoslab
	$(BIN)/chaoslab check $(LAB)

list: $(BIN)/chaoslab
	$(BIN)/chaoslab list

bench: $(BIN)/chaoslab
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

# Every variant of every lab RUNS times; LOAD=2 keeps both cores busy meanwhile; LAB=<name>
# narrows to one lab; ONLY=wrong/ narrows to the variants whose label contains it. Runs of
# committed code go to tests/labs/flake-ledger.jsonl, which is committed: RESUME=1 runs only what
# it lacks for the code at HEAD (the whole table takes hours: fill it in over several sittings);
# `make flake-table` prints it; `make flake-prune` drops runs of old code before a commit.
flake: $(BIN)/chaoslab
	$(BIN)/python scripts/flake.py --runs $(RUNS) --load $(LOAD) --jobs $(JOBS) \
		$(if $(filter command line,$(origin LAB)),--lab $(LAB)) $(if $(ONLY),--only $(ONLY)) \
		$(if $(RESUME),--resume)

flake-table: $(BIN)/chaoslab
	$(BIN)/python scripts/flake.py --table

flake-prune: $(BIN)/chaoslab
	$(BIN)/python scripts/flake.py --prune

lint: $(BIN)/chaoslab
	$(BIN)/ruff check harness tests labs scripts
	$(BIN)/ruff format --check harness tests labs scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
