#!/usr/bin/env bash
# A real OpenAI-compatible server for the load test: llama.cpp's server through
# PyPI llama-cpp-python (built for the CPU), serving a tiny random-weight model
# written with the gguf package (scripts/make_tiny_gguf.py). docs/load.md §Tests.
#
#   scripts/llama-test-server.sh setup        build the venv if missing (~4 min on 2 cores)
#   scripts/llama-test-server.sh run CMD…     start the server on a free loopback port, run CMD
#                                             with LLAMA_URL set, stop the server on every exit
#   scripts/llama-test-server.sh status       exit 0 when the venv is ready
#
# The venv lives in build/venv-llama (MOEPLAN_LLAMA_VENV overrides). `run` exits 77
# (CTest's skip code) when the venv is not ready, and never builds it itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${MOEPLAN_LLAMA_VENV:-$root/build/venv-llama}
pkgs=("llama-cpp-python[server]==0.3.36" "gguf==0.19.0")

ready() {
  [[ -x $venv/bin/python ]] &&
    "$venv/bin/python" -c "import llama_cpp.server.app, gguf, numpy" >/dev/null 2>&1
}

setup() {
  if ready; then echo "llama test server: $venv is ready"; return 0; fi
  echo "llama test server: building $venv (llama-cpp-python from source, a few minutes)"
  python3 -m venv "$venv"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "$venv/bin/pip" install --quiet "${pkgs[@]}"
  ready
}

run() {
  if ! ready; then
    echo "skipped: no llama-cpp-python in $venv (build it with: $0 setup)"
    exit 77
  fi
  work=$(mktemp -d)
  pid=""
  cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  py=$venv/bin/python
  "$py" "$root/scripts/make_tiny_gguf.py" "$work/tiny.gguf"
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$py" -m llama_cpp.server --model "$work/tiny.gguf" --model_alias tiny-test \
    --host 127.0.0.1 --port "$port" --n_ctx 4096 --n_threads 1 --interrupt_requests False \
    >"$work/server.log" 2>&1 &
  pid=$!
  export LLAMA_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "llama test server died while starting:" >&2
      cat "$work/server.log" >&2
      exit 1
    fi
    if "$py" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/v1/models', timeout=1)" \
      "$LLAMA_URL" >/dev/null 2>&1; then
      break
    fi
    sleep 0.1
  done
  echo "llama test server: $LLAMA_URL (model $(du -k "$work/tiny.gguf" | cut -f1) KiB)"
  set +e
  "$@"
  rc=$?
  set -e
  if ((rc != 0)); then
    echo "--- server log (tail) ---" >&2
    tail -20 "$work/server.log" >&2
  fi
  exit "$rc"
}

case ${1:-} in
  setup) setup ;;
  status) ready ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 setup | status | run CMD…" >&2; exit 2 ;;
esac
