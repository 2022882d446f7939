# Convenience wrapper around CMake. Every target installs missing Debian
# packages first (scripts/setup-deps.sh; silent when nothing is missing).
#
#   make                 build into build/ (RelWithDebInfo)
#   make run             build, serve on $(LISTEN) with data in $(DATA)/, and
#                        create the demo platform once (scripts/run.sh)
#   make test            build, then run every test with ctest (the browser
#                        tests' chromium and selenium installed first)
#   make test-asan       ASan+UBSan Debug build in build-asan/, then ctest
#   make test-valgrind   unit tests and fuzz corpus replays of build/ under
#                        valgrind (fails on leaks)
#   make install         cmake --install build --prefix $(PREFIX)
#   make fuzz            libFuzzer targets (clang) in build-fuzz/, each run for
#                        $(FUZZ_SECONDS) s; FUZZ_TARGETS picks (tests/fuzz)
#   make bench           bench/gateway.sh (nno vs nginx; see bench/README.md)
#   make clean           remove build/, build-asan/ and build-fuzz/ (never $(DATA)/)

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http router manifest config semver json iam archive
PREFIX     ?= /usr/local
LISTEN     ?= 127.0.0.1:8080
DATA       ?= var
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=

# No "Entering directory" noise from the make that cmake --build runs.
MAKEFLAGS += --no-print-directory

VALGRIND = valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
           --error-exitcode=1 --quiet

# configure DIR ARGS: (re)configure DIR unless it already holds a generated
# build system; cmake --build re-runs CMake by itself when a list file changes.
define configure
	@if [ ! -f $(1)/CMakeCache.txt ] || \
	    { [ ! -f $(1)/Makefile ] && [ ! -f $(1)/build.ninja ]; }; then \
	  cmake -S . -B $(1) $(2) $(CMAKE_ARGS); \
	fi
endef

.PHONY: all build deps run test test-asan test-valgrind fuzz install bench clean

all: build

deps:
	@sh scripts/setup-deps.sh

build: deps
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@BIN=$(BUILD)/bin/nno LISTEN=$(LISTEN) DATA=$(DATA) exec sh scripts/run.sh

test: build
	@sh scripts/setup-deps.sh browser
	ctest --test-dir $(BUILD) --output-on-failure $(CTEST_ARGS)

test-asan: deps
	$(call configure,$(ASAN_BUILD),-DNNO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	@sh scripts/setup-deps.sh browser
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure $(CTEST_ARGS)

# Every unit test executable (ctest's unit_<name> runs tests/test_<name>)
# and every fuzz corpus replay (tests/fuzz_replay_<target>, which replays
# its committed corpus when given no argument) under valgrind; all run,
# then the target fails if any failed or leaked.
test-valgrind: build
	@set -u; n=0; failed=""; \
	for t in $(BUILD)/tests/test_* $(BUILD)/tests/fuzz_replay_*; do \
	  [ -f "$$t" ] && [ -x "$$t" ] || continue; \
	  n=$$((n + 1)); \
	  echo "valgrind: $$t"; \
	  $(VALGRIND) "$$t" || failed="$$failed $${t##*/}"; \
	done; \
	if [ "$$n" -eq 0 ]; then \
	  echo "test-valgrind: no unit test executables in $(BUILD)/tests" >&2; exit 1; \
	fi; \
	if [ -n "$$failed" ]; then \
	  echo "test-valgrind: FAILED (errors, leaks or test failures):$$failed" >&2; exit 1; \
	fi; \
	echo "test-valgrind: $$n test executable(s) clean"

# libFuzzer targets need clang: a build of their own, never build/.
fuzz:
	@sh scripts/setup-deps.sh fuzz
	$(call configure,$(FUZZ_BUILD),-DNNO_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@sh scripts/setup-deps.sh bench
	bash bench/gateway.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
