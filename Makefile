# The two commands: `make run` builds and serves on 127.0.0.1:3001, `make test` runs every
# test (unit, black-box, and the same again under ASan + UBSan). CMake does the work.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PORT       ?= 3001
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all build run test test-release test-asan fuzz bench format format-check clean

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/candado serve --host 127.0.0.1 --port $(PORT)

test:
	@scripts/deps.sh test
	$(MAKE) --no-print-directory test-release
	$(MAKE) --no-print-directory test-asan

test-release:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCANDADO_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2

fuzz:
	@scripts/deps.sh test
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCANDADO_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_http
	mkdir -p $(FUZZ_BUILD)/corpus
	./$(FUZZ_BUILD)/fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=20000 \
	    -dict=fuzz/http.dict $(FUZZ_BUILD)/corpus fuzz/corpus

bench:
	@scripts/deps.sh bench
	bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
