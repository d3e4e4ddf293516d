# Winzo engine: local services, build, run and test.
#
#   make run            Postgres+Redis (dev profile), release build, migrate, demo seed, serve
#                       on http://127.0.0.1:8080 in the foreground (Ctrl-C stops the server;
#                       the services keep running). Running it again reuses everything.
#   make test           Postgres+Redis (test profile), debug build, fresh winzo_template with
#                       every migration, then `cargo test --workspace` (TEST_ARGS passed on,
#                       e.g. make test TEST_ARGS="ledger -- --nocapture"), then the browser
#                       tests of the web pages (scripts/browser-test.sh)
#   make stop           stop both profiles' services      make clean-data  stop + delete .data/
#   make services       start the dev services only       make services-test  the test ones
#   make status         state of both profiles            make migrate / make seed  (dev DB)
#   make fmt / lint     rustfmt / fmt check + clippy      make bench           load tests (README)
#   make backup         base backup of PROFILE (dev) + retention (WINZO_BACKUP_KEEP, default 7)
#   make restore TARGET_TIME='2026-11-24 22:10:00+00'   PITR of PROFILE's newest backup into a
#                       new folder on a free port (BACKUP=, RESTORE_DIR=, RESTORE_PORT= optional)
#                       docs/operations.md has the procedure
#   make cluster        local HA set (scripts/cluster.sh): etcd, Patroni primary + synchronous
#                       standby, pg_receivewal archive, Redis, three `winzo serve` nodes on
#                       127.0.0.1:28081-28083 (README "Cluster")     make cluster-stop  stop it
#   make cluster-status state of its pieces
#   make chaos          database failover drill on a private cluster (scripts/chaos.sh): the
#                       primary is killed under load; prints the time without acceptance
#
# Profiles (scripts/services.sh has the details; data under the git-ignored .data/):
#   dev   Postgres 127.0.0.1:25432 db winzo            Redis 127.0.0.1:26379
#   test  Postgres 127.0.0.1:25433 db winzo_template   Redis 127.0.0.1:26380
# Superuser `winzo`, no password (trust on loopback only).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
SERVICES := scripts/services.sh

DEV_DATABASE_URL := postgres://winzo@127.0.0.1:25432/winzo
DEV_REDIS_URL := redis://127.0.0.1:26379
DEV_ENV := WINZO_ENV=development DATABASE_URL=$(DEV_DATABASE_URL) REDIS_URL=$(DEV_REDIS_URL)

# Where `make run` serves; override with make run SERVE_PORT=9000.
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8080
SERVE_ENV := WINZO__SERVER__HOST=$(SERVE_HOST) WINZO__SERVER__PORT=$(SERVE_PORT)

RELEASE_BIN := target/release/winzo

TEST_ARGS ?=
ARGS ?=

# make backup / make restore (scripts/backup.sh, scripts/restore.sh)
PROFILE ?= dev
TARGET_TIME ?=
BACKUP ?=
RESTORE_DIR ?=
RESTORE_PORT ?=

.PHONY: help run test stop services services-test status migrate seed build-release \
	fmt lint clean-data bench backup restore cluster cluster-stop cluster-status chaos

help:
	@sed -n '2,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

services:
	$(SERVICES) up dev

services-test:
	$(SERVICES) up test

status:
	@$(SERVICES) status dev || true
	@$(SERVICES) status test || true

build-release:
	$(CARGO) build --release --bins

migrate: services build-release
	$(DEV_ENV) $(RELEASE_BIN) migrate

seed: migrate
	$(DEV_ENV) $(RELEASE_BIN) seed-demo

# The simulated odds feed starts in the background only when this build of winzo lists a
# `feed-sim` subcommand in its --help (the lead wires any arguments it needs on the
# `feed-sim` line below); it logs to .data/dev/feed-sim.log and is stopped when `serve`
# exits. `serve` then runs in the foreground.
run: seed
	@feed_pid=""; serve_pid=""; \
	help="$$($(RELEASE_BIN) --help 2>/dev/null || true)"; \
	if grep -qE '^[[:space:]]+feed-sim([[:space:]]|$$)' <<<"$$help"; then \
	  echo "starting winzo feed-sim in the background (log: .data/dev/feed-sim.log)"; \
	  $(DEV_ENV) $(RELEASE_BIN) feed-sim >>.data/dev/feed-sim.log 2>&1 & feed_pid=$$!; \
	  echo "$$feed_pid" > .data/dev/feed-sim.pid; \
	fi; \
	trap 'for p in $$feed_pid $$serve_pid; do kill "$$p" 2>/dev/null || true; done; rm -f .data/dev/feed-sim.pid .data/dev/serve.pid' EXIT INT TERM; \
	echo "serving on http://$(SERVE_HOST):$(SERVE_PORT) (Ctrl-C or 'make stop' stops it; 'make stop' also stops the services)"; \
	$(DEV_ENV) $(SERVE_ENV) $(RELEASE_BIN) serve & serve_pid=$$!; \
	echo "$$serve_pid" > .data/dev/serve.pid; \
	wait "$$serve_pid"

# All the steps live in scripts/test.sh: services up test, cargo build --bins, drop and
# recreate winzo_template (WITH (FORCE)), migrate it with target/debug/winzo, then
# WINZO_ENV=test cargo test --workspace $(TEST_ARGS), then the web pages' browser tests in
# headless Chromium (scripts/browser-test.sh). make fails exactly when either fails (make
# reports 2; the script itself exits with cargo's code, else the browser tests'). The test services
# are left running afterwards, also when CI=true: reruns are fast, concurrent sessions
# sharing them are not cut off, and a CI machine is thrown away anyway.
test:
	scripts/test.sh $(TEST_ARGS)

# Stops what `make run` started (by the process ids it recorded), then both profiles' services.
stop:
	@for f in .data/dev/serve.pid .data/dev/feed-sim.pid; do \
	  if [ -f "$$f" ]; then pid="$$(cat "$$f")"; \
	    if kill -0 "$$pid" 2>/dev/null; then echo "stopping $$(basename "$$f" .pid) (pid $$pid)"; kill "$$pid" || true; fi; \
	    rm -f "$$f"; fi; \
	done
	$(SERVICES) down dev
	$(SERVICES) down test

clean-data:
	$(SERVICES) destroy dev
	$(SERVICES) destroy test
	rm -rf .data

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The standard load-test set (scripts/bench.sh): release build, dev services with a fresh
# winzo_bench database, `winzo serve` (release), 3 rounds of every scenario plus the pgbench
# baseline, report in load-tests/results/bench-<time>/SUMMARY.md. ARGS go to winzo-load,
# e.g. make bench ARGS="--concurrency 128"; BENCH_RUNS, BENCH_DURATION_S, BENCH_SCENARIOS.
bench:
	BENCH_ARGS='$(ARGS)' scripts/bench.sh

backup:
	scripts/backup.sh $(PROFILE)

# The optional arguments are positional: an empty one means "the default".
restore:
	TARGET_TIME='$(TARGET_TIME)' scripts/restore.sh $(PROFILE) '$(BACKUP)' '$(RESTORE_DIR)' '$(RESTORE_PORT)'

# The local cluster and the failover drill (docs/operations.md, "High availability").
cluster:
	$(CARGO) build --bins
	scripts/cluster.sh up

cluster-stop:
	scripts/cluster.sh down

cluster-status:
	scripts/cluster.sh status

chaos:
	scripts/chaos.sh
