# shard_coordinator: PGXS build of the extension, plus the client, tests and demo.
#
#   make                 build the extension (needs only postgresql-server-dev-15)
#   make install         install it into the PostgreSQL that pg_config names
#   make client          build the agent and the C++ client library (client/:
#                        CMake, libpq, nlohmann-json, CLI11, GoogleTest)
#   make install-client  install the agent (/usr/local/bin/shard-coordinator)
#   make deps            install every Debian package the targets below need
#   make test            install packages if missing, build, install, run every suite
#   make demo            the main job on a throwaway server
#   make bench           the benchmarks
#   make deb             the Debian packages postgresql-15-shard-coordinator and
#                        shard-coordinator-agent (debian/), in the top directory

.DEFAULT_GOAL := all

EXTENSION   = shard_coordinator
MODULE_big  = shard_coordinator
DATA        = sql/shard_coordinator--1.0.sql sql/shard_coordinator--1.1.sql \
	sql/shard_coordinator--1.0--1.1.sql
PGFILEDESC  = "shard_coordinator - consumer-group coordination inside PostgreSQL"

# One folder per part (docs/design.md, "Source layout"): core/ is pure C++
# without PostgreSQL headers (make lint checks it).
CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
OBJS = $(patsubst %.cpp,%.o,$(CORE_SRCS) \
	$(sort $(wildcard src/shmem/*.cpp src/worker/*.cpp src/sql/*.cpp)) \
	src/module.cpp)

# pg_regress suites run against an already running server (installcheck),
# started by scripts/with-pg.sh with the library preloaded.
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --use-existing
ISOLATION    = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --use-existing
TEST_DB     ?= sc_test

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)

PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-register -fno-omit-frame-pointer
PG_CPPFLAGS += -I$(srcdir)/src
SHLIB_LINK  += -lstdc++

# No LLVM bitcode for JIT inlining: our functions are not worth inlining into
# query plans, and skipping it saves a clang dependency.
override with_llvm = no
# Rebuild objects whose headers changed (dependency files in .deps/).
override autodepend = yes

# test/ is a directory: without this, `make test` would be "up to date".
.PHONY: all install test demo unit-test deps format lint bench deb \
	client install-client clean-client

deps:
	@bash scripts/install-deps.sh

# The client library and the shard-coordinator agent (client/, CMake): never
# built or installed by `make` and `make install` (PGXS convention: those
# are the extension's), only by these goals and by test, demo and bench.
client:
	$(MAKE) -C client all
install-client: client
	$(MAKE) -C client install
clean-client:
	$(MAKE) -C client clean

# Benchmarks (issue 5; not part of `make test`): bench/RESULTS.md and
# bench/results.png, on throwaway servers. Installs what it needs itself.
bench:
	bash bench/run.sh

# The Debian packages: dpkg-buildpackage -us -uc -b in a copy of the tree,
# the .deb files into this directory (needs the build dependencies:
# apt-get build-dep ./).
deb:
	bash scripts/build-deb.sh

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(wildcard $(PGXS)),)
# No PostgreSQL server headers. The extension's own goals say what to
# install; the goals that install what they need (a fresh machine: make test,
# make demo) install the packages first, then run the same goal again.
all install:
	@echo "shard_coordinator needs PostgreSQL 15's server headers ($(PG_CONFIG) --pgxs):" >&2
	@echo "  apt-get install postgresql-server-dev-15   (make deps installs everything the tests need)" >&2
	@exit 1
test demo unit-test:
	bash scripts/install-deps.sh
	$(MAKE) $@
else
include $(PGXS)

# pg_regress and pg_isolation_regress run in the database that
# scripts/with-pg.sh made (PGXS would otherwise name its own).
CONTRIB_TESTDB = $(TEST_DB)
ISOLATION_TESTDB = $(TEST_DB)

clean: clean-client

# Unit tests of the pure C++ parts (no PostgreSQL headers).
UNIT_SRCS = $(sort $(wildcard test/unit/*_test.cpp)) $(CORE_SRCS) \
	src/worker/stall_meter.cpp
test/unit/unit_tests: $(UNIT_SRCS) $(wildcard src/core/*.hpp src/worker/stall_meter.hpp)
	$(CXX) -std=c++17 -O1 -g -Wall -Wextra -Werror -Isrc -o $@ $(UNIT_SRCS) \
		-lgtest -lgtest_main -pthread

unit-test: test/unit/unit_tests
	test/unit/unit_tests

# Everything: packages, build, install, then each suite on a throwaway server
# (scripts/run-tests.sh installs the extension and the agent).
test: deps
	$(MAKE) all client
	bash scripts/run-tests.sh

demo: deps
	$(MAKE) all client
	$(if $(filter 0,$(shell id -u)),,sudo) $(MAKE) install >/dev/null
	bash $(firstword $(wildcard scripts/demo.sh) scripts/demo-sql.sh)

FORMATTED = src/*.cpp src/*.hpp src/*/*.cpp src/*/*.hpp test/unit/*.cpp
TIDY_FLAGS = -std=c++17 -Isrc -I$(shell $(PG_CONFIG) --includedir-server) -D_GNU_SOURCE

format:
	clang-format -i $(FORMATTED)

# Formatting, clang-tidy and the C++/PostgreSQL boundary rules must be clean,
# and every version number of the release agree (run by make test).
lint:
	clang-format --dry-run -Werror $(FORMATTED)
	@python3 scripts/check-boundary.py
	@python3 scripts/check-versions.py
	@for f in src/*.cpp src/*/*.cpp; do \
	  out=$$(clang-tidy --quiet $$f -- $(TIDY_FLAGS) 2>/dev/null | grep -E '^src/.*(warning|error):'); \
	  if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	done
	$(MAKE) -s -C client lint
	@echo "ok 1 - clang-format, clang-tidy, the boundary rules and the versions are clean"

EXTRA_CLEAN = test/unit/unit_tests results output_iso regression.diffs \
	regression.out log src/*/*.o
endif
