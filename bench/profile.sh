#!/usr/bin/env bash
# Where the time goes: perf profiles of two hot paths, the ones the benchmark fixes came from.
#
#   bench/profile.sh wordcount [FILE-SIZE]     # `weft run` wordcount on 8 generated files
#                                              # of FILE-SIZE each (default 128MiB)
#   bench/profile.sh scale [WORKERS] [TASKS]   # the coordinator while sim-workers drains a
#                                              # batch (default 1000 workers, 1000000 tasks)
#
# Prints the top symbols (software cpu-clock sampling: it works where hardware counters are
# not exposed, as in VMs); the profile stays in target/bench/perf-NAME.data for `perf report`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v perf >/dev/null; then
    echo "== installing perf (Debian's linux-perf)"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf
fi
echo "== building weft and the bench programs (release)"
cargo build --release -q -p weft-cli -p weft-bench
work=target/bench
mkdir -p "$work"
what=${1:-}

case "$what" in
wordcount)
    size=${2:-128MiB}
    data=$work/profile-wordcount-$size
    if [ ! -d "$data" ]; then
        target/release/weft generate-text --ascii --output "$data" --files 8 --size "$size" --seed 7
    fi
    rm -rf "$work/profile-wordcount-out"
    perf record -e cpu-clock -F 999 -g -o "$work/perf-wordcount.data" -- \
        target/release/weft run --input "$data" --output "$work/profile-wordcount-out" \
        --app wordcount --reduce-tasks 2 --split-size "$(stat -c %s "$data/text-0000.txt")"
    rm -rf "$work/profile-wordcount-out"
    ;;
scale)
    workers=${2:-1000}
    tasks=${3:-1000000}
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    state=$(mktemp -d)
    WEFT_LOG=warn target/release/weft coordinator --listen "127.0.0.1:$port" --state-dir "$state" &
    coordinator=$!
    trap 'kill -KILL $coordinator 2>/dev/null; rm -rf "$state"' EXIT
    until target/release/weft health --coordinator "http://127.0.0.1:$port" >/dev/null 2>&1; do sleep 0.1; done
    perf record -e cpu-clock -F 999 -g -o "$work/perf-scale.data" -p "$coordinator" &
    recorder=$!
    target/release/sim-workers "http://127.0.0.1:$port" "$coordinator" "$workers" "$tasks"
    kill -INT $recorder
    wait $recorder || true
    ;;
*)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac

echo "== top symbols (perf report -i $work/perf-$what.data)"
perf report -i "$work/perf-$what.data" --no-children --sort sym --stdio -g none 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -25
