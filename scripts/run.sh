#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   scripts/run.sh main   install what is missing, build, run the main job on the bundled catalogs
#   scripts/run.sh test   install what is missing, build, run the whole test suite
#   scripts/run.sh ci-extra  what CI adds after `test`: a sanitizer build + tests, fuzzing of every
#                            reader (scripts/fuzz.sh), the catalog regression, a format check
# Environment: BUILD_DIR (default build), JOBS (default nproc), CUDA_ARCHS (default: CMake's list),
#   MOEPLAN_SKIP_LLAMA=1: `test` does not build the llama.cpp test server's venv (the
#   load:llama_server test is then skipped; docs/load.md §Tests).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-main}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

# Debian packages the build needs, with a file that proves each is installed.
declare -A need=(
  [cmake]=/usr/bin/cmake [ninja-build]=/usr/bin/ninja [g++]=/usr/bin/g++ [pkg-config]=/usr/bin/pkg-config
  [nlohmann-json3-dev]=/usr/include/nlohmann/json.hpp [libcli11-dev]=/usr/include/CLI/CLI.hpp
  [libeigen3-dev]=/usr/include/eigen3/Eigen/Core [catch2]=/usr/include/catch2/catch.hpp
  [libfmt-dev]=/usr/include/fmt/format.h [libxlsxwriter-dev]=/usr/include/xlsxwriter.h
  [clang-format]=/usr/bin/clang-format [git]=/usr/bin/git
  [libcurl4-openssl-dev]=/usr/include/x86_64-linux-gnu/curl/curl.h [zlib1g-dev]=/usr/include/zlib.h
  [python3]=/usr/bin/python3 [python3-venv]=/usr/lib/python3.11/ensurepip/__init__.py
)
missing=()
# The sanitizer build and the fuzzers are compiled with clang (about half GCC's time with ASan
# and UBSan on); only CI's extra job needs it.
if [[ $mode == ci-extra ]]; then need[clang]=/usr/bin/clang++; fi
for p in "${!need[@]}"; do [[ -e ${need[$p]} ]] || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing missing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"
  else
    echo "error: need root or passwordless sudo to install: ${missing[*]}" >&2
    echo "       install them yourself: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cuda_args=()
if [[ -n ${CUDA_ARCHS:-} ]]; then cuda_args+=("-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS}"); fi

configure_build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DMOEPLAN_WERROR=ON "${cuda_args[@]}" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

run_tests() {  # dir
  (cd "$1" && ctest --output-on-failure -j "$JOBS" --timeout 600)
}

case "$mode" in
  main)
    configure_build "$BUILD_DIR"
    "$BUILD_DIR/apps/moeplan" catalog check
    "$BUILD_DIR/apps/moeplan" plan examples/plan-8xh200-glm52-huf.json
    ;;
  test)
    configure_build "$BUILD_DIR"
    if [[ ${MOEPLAN_SKIP_LLAMA:-0} != 1 ]]; then
      # The real-server load test needs llama-cpp-python (PyPI, built for the CPU).
      # Under CI the real-server test must run, so a failed set-up fails the job; elsewhere it
      # is skipped with a warning (no network to PyPI, say).
      if ! MOEPLAN_LLAMA_VENV="$BUILD_DIR/venv-llama" scripts/llama-test-server.sh setup; then
        if [[ -n ${CI:-} ]]; then
          echo "error: could not build $BUILD_DIR/venv-llama for the load:llama_server test" >&2
          exit 1
        fi
        echo "warning: could not build $BUILD_DIR/venv-llama: load:llama_server will be skipped" >&2
      fi
    fi
    run_tests "$BUILD_DIR"
    ;;
  ci-extra)
    echo "== sanitizer build (ASan + UBSan), CUDA off =="
    # -O1 and line tables only, as sanitizer builds usually are (line numbers are all a report
    # needs), and clang: GCC with ASan and UBSan took 47 s on plan.cpp where clang takes 20, and
    # this build alone had pushed CI past 30 minutes. Build type None keeps assert() on, which a
    # checking build should.
    configure_build "${BUILD_DIR}-asan" -DMOEPLAN_SANITIZE=ON -DMOEPLAN_WITH_CUDA=OFF \
      -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
      -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_tests "${BUILD_DIR}-asan"
    echo "== fuzzing (libFuzzer, clang, ASan + UBSan; FUZZ_RUNS executions per reader) =="
    scripts/fuzz.sh
    echo "== catalog regression =="
    "$BUILD_DIR/apps/moeplan" regress
    echo "== format check =="
    git ls-files '*.cpp' '*.hpp' '*.cu' '*.cuh' | xargs clang-format --dry-run -Werror
    echo "format OK"
    ;;
  *)
    echo "usage: $0 main|test|ci-extra" >&2
    exit 2
    ;;
esac
