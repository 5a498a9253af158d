#!/usr/bin/env bash
# Cluster matchmaking benchmark: a 3-process cluster on one Redis, driven
# by the server-agnostic load generator sync-core/examples/clusterbench.rs
# (HTTP matchmaking + WebSocket only).
#
#   benches/cluster.sh [--server node|roomcast|roomcast-single]
#                      [--scenarios burst,ramp,query100,query10000]
#                      [--processes 3] [--out results.jsonl] [--keep]
#                      [-- extra clusterbench flags, e.g. --n 600 --rates 50,100,200 --joins 200]
#
# (`-- --spread-modes` sends every mode to every process: by default request
# i has mode i % 3 and goes to process i % 3, so each mode meets one entry
# process; `-- --keep-going` runs every ramp rate.)
#
# --server node            @colyseus/core 0.18.17 + @colyseus/redis-presence 0.18.5
#                          + @colyseus/redis-driver 0.18.3 + @colyseus/ws-transport
#                          0.18.4 (tests/node/cluster/node-cluster-server.mjs)
# --server roomcast        the Roomcast cluster: the demo server
#                          (sync-core/src/bin/roomcast-demo) with ROOMCAST_REDIS,
#                          rooms battle and filler as on the Node side
# --server roomcast-single one Roomcast process (the demo server without Redis)
#
# Every scenario runs on a fresh cluster (fresh Redis, fresh processes):
#   burst       600 concurrent joinOrCreate("battle", {mode}) then leave
#   ramp        open-loop join + leave at rising rates until p99 > 100 ms
#   query100    100 filler rooms listed, then sequential joins
#   query10000  10,000 filler rooms listed, then sequential joins
#
# Needs Node.js 20+ and npm (tests/node is installed with `npm ci` when
# needed), redis-server and redis-cli (Debian's /usr/bin/redis-server).
# Prints each scenario's table; the JSON lines of all results are gathered
# in the work directory's results.jsonl (and in --out if given). The work
# directory (logs of every process) is removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SERVER=node
SCENARIOS=burst,ramp,query100,query10000
PROCESSES=3
OUT=
KEEP=0
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --server) SERVER=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --processes) PROCESSES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$SERVER" in
    node|roomcast|roomcast-single) ;;
    *) echo "--server node|roomcast|roomcast-single" >&2; exit 2 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/roomcast-cluster.XXXXXX")
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# Processes of the current cluster (servers and Redis), stopped by
# stop_cluster and, whatever happens, on exit.
CLUSTER_PIDS=()
SERVER_PIDS=()
ENDPOINTS=()
REDIS_PORT=
REDIS_URL=

stop_cluster() {
    local pid
    for pid in "${CLUSTER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${CLUSTER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
    SERVER_PIDS=()
    ENDPOINTS=()
}

on_exit() {
    stop_cluster
    if [[ -n "$OUT" && -s "$RESULTS" ]]; then
        cp "$RESULTS" "$OUT"
    fi
    if [[ $KEEP == 1 ]]; then
        echo "logs and results kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

echo "building clusterbench…" >&2
cargo build --release --quiet -p roomcast --example clusterbench
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/clusterbench"

# `cargo run` as the load generator (already built above, so it only checks).
clusterbench() {
    cargo run --release --quiet -p roomcast --example clusterbench -- "$@"
}

free_ports() { # n
    "$BENCH" ports "$1"
}

# Waits until $log has a line "READY <port>", or one that starts with
# $prefix if given (or the process died).
wait_ready() { # pid log port what [prefix]
    local pid=$1 log=$2 port=$3 what=$4 prefix=${5:-} i
    for ((i = 0; i < 300; i++)); do
        if { [[ -n $prefix ]] && grep -qF "$prefix" "$log" 2>/dev/null; } ||
            grep -q "^READY $port\$" "$log" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$what exited before it was ready; its log:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$what not ready after 30 s; its log:" >&2
    cat "$log" >&2
    return 1
}

start_redis() { # dir
    local dir=$1 i
    mkdir -p "$dir"
    REDIS_PORT=$(free_ports 1)
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    (cd "$dir" && exec redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save "" --appendonly no --dir "$dir" --daemonize no) >"$dir/redis.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    SERVER_PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
            return 0
        fi
        sleep 0.1
    done
    echo "redis-server did not start:" >&2
    cat "$dir/redis.log" >&2
    return 1
}

ensure_node_modules() {
    local dir="$ROOT/tests/node"
    if [[ ! -f "$dir/node_modules/.package-lock.json" ||
        "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
        echo "npm ci in tests/node…" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

start_node_cluster() { # dir
    local dir=$1 port i=0
    local pids=() ports=()
    ensure_node_modules || return 1
    for port in $(free_ports "$PROCESSES"); do
        i=$((i + 1))
        (cd "$ROOT/tests/node" && exec node cluster/node-cluster-server.mjs "$port" "$REDIS_URL") \
            >"$dir/node-$i.log" 2>&1 &
        pids+=($!)
        ports+=("$port")
        CLUSTER_PIDS+=($!)
        SERVER_PIDS+=($!)
        ENDPOINTS+=("http://127.0.0.1:$port")
    done
    for ((i = 0; i < PROCESSES; i++)); do
        wait_ready "${pids[$i]}" "$dir/node-$((i + 1)).log" "${ports[$i]}" \
            "node cluster process $((i + 1))" || return 1
    done
}

# ---------------------------------------------------------------------------
# The Roomcast cluster, under the same contract as start_node_cluster: Redis is already running at
# $REDIS_URL; start $PROCESSES server processes on free loopback ports
# (`free_ports $PROCESSES`), each defining the rooms `battle` (maxClients
# 10, filterBy ["mode"], state { players: map<Player{name}> }) and `filler`
# (autoDispose false, maxClients 1000), with publicAddress
# 127.0.0.1:<port>, logging to "$dir/roomcast-<i>.log" and printing
# "roomcast ready <port> <processId>" once listening (then `wait_ready`). Append every pid to
# CLUSTER_PIDS (stopped on exit) and SERVER_PIDS (CPU accounting), and
# every "http://127.0.0.1:<port>" to ENDPOINTS. Return non-zero to skip.
# ---------------------------------------------------------------------------
start_roomcast_cluster() { # dir
    local dir=$1 port i=0 demo
    local pids=() ports=()
    cargo build --release --quiet -p roomcast --bin roomcast-demo || return 1
    demo="${CARGO_TARGET_DIR:-$ROOT/target}/release/roomcast-demo"
    for port in $(free_ports "$PROCESSES"); do
        i=$((i + 1))
        ROOMCAST_ADDR="127.0.0.1:$port" ROOMCAST_REDIS="$REDIS_URL" \
            ROOMCAST_PROCESS_ID="roomcast-$i" ROOMCAST_PUBLIC_ADDRESS="127.0.0.1:$port" \
            "$demo" >"$dir/roomcast-$i.log" 2>&1 &
        pids+=($!)
        ports+=("$port")
        CLUSTER_PIDS+=($!)
        SERVER_PIDS+=($!)
        ENDPOINTS+=("http://127.0.0.1:$port")
    done
    for ((i = 0; i < PROCESSES; i++)); do
        wait_ready "${pids[$i]}" "$dir/roomcast-$((i + 1)).log" "${ports[$i]}" \
            "roomcast cluster process $((i + 1))" "roomcast ready ${ports[$i]} " || return 1
    done
}

# One Roomcast process, no Redis (the demo server, which defines the same
# rooms): the load generator against single-process matchmaking.
start_roomcast_single() { # dir
    local dir=$1 port pid demo
    cargo build --release --quiet -p roomcast --bin roomcast-demo || return 1
    demo="${CARGO_TARGET_DIR:-$ROOT/target}/release/roomcast-demo"
    port=$(free_ports 1)
    ROOMCAST_ADDR="127.0.0.1:$port" "$demo" >"$dir/roomcast-single.log" 2>&1 &
    pid=$!
    CLUSTER_PIDS+=($pid)
    SERVER_PIDS+=($pid)
    ENDPOINTS=("http://127.0.0.1:$port")
    wait_ready "$pid" "$dir/roomcast-single.log" "$port" "roomcast" "roomcast ready $port " || return 1
}

start_cluster() { # name
    local dir="$WORK/$1"
    mkdir -p "$dir"
    case "$SERVER" in
        node)
            start_redis "$dir/redis" || return 1
            start_node_cluster "$dir" || return 1
            ;;
        roomcast)
            start_redis "$dir/redis" || return 1
            start_roomcast_cluster "$dir" || return 1
            ;;
        roomcast-single)
            start_roomcast_single "$dir" || return 1
            ;;
    esac
}

# What the servers' logs say about the run, and the rooms left listed in
# Redis. For the Node cluster: a "health-check" follows a remote call (seat
# reservation or room creation over Redis pub/sub) that got no answer in
# COLYSEUS_PRESENCE_SHORT_TIMEOUT (2 s); "Cleaning it up" means the
# process did not answer the health check either and its rooms were
# removed from the listing.
summarize_logs() { # name
    local dir="$WORK/$1" log checks swept warnings errors
    for log in "$dir"/node-*.log "$dir"/roomcast-*.log; do
        [[ -f $log ]] || continue
        checks=$(grep -c "Performing health-check" "$log" || true)
        swept=$(grep -c "Cleaning it up" "$log" || true)
        warnings=$(grep -c "MaxListenersExceededWarning" "$log" || true)
        errors=$(grep -i -E "error|timed out|not available" "$log" |
            grep -v -c "MaxListenersExceededWarning" || true)
        if [[ $((checks + swept + warnings + errors)) -gt 0 ]]; then
            echo "  $(basename "$log"): $checks health check(s) after an unanswered remote call," \
                "$swept process(es) swept, $warnings MaxListeners warning(s), $errors other error line(s)"
            grep -i -E "error|timed out|not available" "$log" | grep -v "MaxListenersExceededWarning" |
                cut -c1-160 | sort | uniq -c | sort -rn | head -3 | sed 's/^ */    /' || true
        fi
    done
    if [[ -n $REDIS_PORT ]] && [[ $SERVER != roomcast-single ]]; then
        echo "  rooms listed in Redis at the end: $(redis-cli -p "$REDIS_PORT" hlen roomcaches 2>/dev/null || echo '?')"
    fi
}

run_scenario() { # name clusterbench-args...
    local name=$1
    shift
    echo
    echo "=== $name ($SERVER, $PROCESSES processes) ==="
    if ! start_cluster "$name"; then
        echo "  skipped"
        stop_cluster
        return 0
    fi
    local endpoints pids
    endpoints=$(IFS=,; echo "${ENDPOINTS[*]}")
    pids=$(IFS=,; echo "${SERVER_PIDS[*]}")
    if ! clusterbench "$@" --endpoints "$endpoints" --pids "$pids" --label "$SERVER" \
        ${EXTRA[@]+"${EXTRA[@]}"} | tee -a "$WORK/$name/out.txt"; then
        echo "  clusterbench failed"
    fi
    grep '^{' "$WORK/$name/out.txt" >>"$RESULTS" || true
    summarize_logs "$name"
    stop_cluster
}

[[ $SERVER == roomcast-single ]] && PROCESSES=1
nproc_note=$(nproc 2>/dev/null || echo '?')
echo "server: $SERVER, $PROCESSES process(es), $nproc_note cores (load generator, servers and Redis share them)"

IFS=, read -r -a LIST <<<"$SCENARIOS"
for scenario in "${LIST[@]}"; do
    case "$scenario" in
        burst) run_scenario burst burst ;;
        ramp) run_scenario ramp ramp ;;
        query*) run_scenario "$scenario" query --rooms "${scenario#query}" ;;
        *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
done

echo
echo "results (JSON lines):"
cat "$RESULTS"
