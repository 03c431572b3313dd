# Qunzu's front door. `make run` starts the whole suite locally; `make test`
# runs every test against private MariaDB and Redis servers.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

# Private ports: one pair for `make run`, another for `make test`, so both
# can be up at once and neither touches a system-wide server.
RUN_MYSQL_PORT ?= 33061
RUN_REDIS_PORT ?= 63791
TEST_MYSQL_PORT ?= 33071
TEST_REDIS_PORT ?= 63801

CXX_SOURCES = $(shell git ls-files --cached --others --exclude-standard -- '*.cc' '*.h')

.PHONY: all deps build test run bench lint format clean

all: build

deps:
	@deploy/local/deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -G "$(CMAKE_GENERATOR)" -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DQUNZU_WERROR=ON

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	deploy/local/with-servers.sh test $(TEST_MYSQL_PORT) $(TEST_REDIS_PORT) -- \
	  ctest --test-dir $(BUILD_DIR) --output-on-failure -j 2

run: build
	deploy/local/with-servers.sh run $(RUN_MYSQL_PORT) $(RUN_REDIS_PORT) -- \
	  deploy/local/run-suite.sh $(BUILD_DIR)

bench: build
	QUNZU_INNODB_LOG_FILE_SIZE=512M \
	  deploy/local/with-servers.sh bench $(TEST_MYSQL_PORT) $(TEST_REDIS_PORT) -- \
	  $(BUILD_DIR)/tests/bench/qunzu-bench

lint: build
	clang-format --dry-run -Werror $(CXX_SOURCES)
	clang-tidy -p $(BUILD_DIR) --quiet $(filter %.cc,$(CXX_SOURCES))

format:
	clang-format -i $(CXX_SOURCES)

clean:
	rm -rf $(BUILD_DIR) .run
