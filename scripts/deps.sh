#!/usr/bin/env bash
# Installs the Debian packages Candado needs for a purpose, if any are missing.
#   scripts/deps.sh build   - to build and run the server
#   scripts/deps.sh test    - to run every test (adds cmocka, clang, redis-server, ...)
#   scripts/deps.sh bench   - to run the benchmarks (adds wrk)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

build=(cmake make gcc pkg-config libuv1-dev libhttp-parser-dev libjansson-dev uthash-dev
       libcurl4-openssl-dev)
test=("${build[@]}" libcmocka-dev python3 curl clang libclang-rt-14-dev clang-format redis-server)
bench=("${build[@]}" wrk python3 util-linux procps)

case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${test[@]}") ;;
bench) want=("${bench[@]}") ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -eq 0 ]]; then
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "Missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
