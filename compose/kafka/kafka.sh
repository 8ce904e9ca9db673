#!/usr/bin/env bash
# A real Apache Kafka on 127.0.0.1 without Docker: one KRaft node (broker and controller
# in one process), or with BROKERS=3 a cluster of three such nodes (a 3-voter quorum). Jars come from Maven Central (pom.xml beside this file),
# cached in compose/kafka/libs/; everything the broker writes (data, logs, pid file)
# lives in ONE folder, .kafka/ at the checkout root.
#
#   kafka.sh up        start the broker if it is not running; wait until it answers
#                      (BROKERS=3: every node answers and the cluster lists all three)
#   kafka.sh down      stop the broker, or every cluster node, by recorded pid (TERM,
#                      then KILL on timeout); whatever BROKERS says
#   kafka.sh status    say whether it (every node) runs and answers (exit 0 if so)
#   kafka.sh run -- CMD ARGS...
#                      up, run CMD with KAFKA_BOOTSTRAP set, then down if THIS run
#                      started the broker (even when CMD fails); exits with CMD's status
#   kafka.sh logs      last lines of the broker's log
#   kafka.sh reset     down, then delete .kafka/ (all topics and data)
#   kafka.sh libs      only resolve the jars
#
# Environment:
#   KAFKA_BOOTSTRAP        set (host:port[,...]) = use that external cluster: up/down do nothing
#   BROKERS                1 (default) or 3 (any 2..9): the number of nodes
#   KAFKA_PORT             broker port (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port (default KAFKA_PORT + 1)
#   KAFKA_HEAP_OPTS        JVM heap (default -Xms128m -Xmx512m; a cluster node -Xms96m
#                          -Xmx384m: three nodes take ~1 GB of memory together, RSS ~330 MB each)
#   KAFKA_ADMIN_PYTHON     interpreter with confluent-kafka, to see that a cluster lists
#                          all its brokers (default <checkout>/.venv/bin/python, else PYTHON)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 120)
#   KAFKA_STOP_TIMEOUT     seconds to wait after TERM before KILL (default 30)
#   REPLAYFLOW_KAFKA_DIR   the data folder (default <checkout>/.kafka)
#   PYTHON                 interpreter for the readiness check (ping.py, confluent-kafka):
#                          default <checkout>/.venv/bin/python, or python3 before .venv
#                          exists (which then only checks that the port accepts connections)
#
# Cluster (BROKERS=N > 1): node i (1..N) listens on KAFKA_PORT + 2(i-1) and has its
# controller on the port after it (9092/9093, 9094/9095, 9096/9097); its properties,
# data, logs and pid file are in <data folder>/node-<i>/. KAFKA_BOOTSTRAP given to
# `run` lists every node. Internal topics get replication 3 (at most N) and min ISR 2.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${REPLAYFLOW_KAFKA_DIR:-$ROOT/.kafka}"
LIBS="$HERE/libs"
PIDFILE="$DIR/kafka.pid"
PROPS="$DIR/server.properties"
DATA="$DIR/data"
LOGS="$DIR/logs"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
EXTERNAL="${KAFKA_BOOTSTRAP:-}"
BROKERS="${BROKERS:-1}"
[[ "$BROKERS" =~ ^[1-9]$ ]] || { echo "kafka: error: BROKERS must be 1..9, not '$BROKERS'" >&2; exit 2; }
NODE_ID=1
BASE_PORT="$KAFKA_PORT"
if ((BROKERS > 1)); then
    KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS_NODE:--Xms96m -Xmx384m}"
fi

say() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }

external_note() {
    say "KAFKA_BOOTSTRAP=$EXTERNAL is set: using that external cluster; no local broker is $1"
}

# ---------------------------------------------------------------- jars

pom_hash() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$HERE/pom.xml" | cut -d' ' -f1
    else
        shasum -a 256 "$HERE/pom.xml" | cut -d' ' -f1 # macOS
    fi
}

libs_ok() { [ -f "$LIBS/.pom.sha256" ] && [ "$(cat "$LIBS/.pom.sha256")" = "$(pom_hash)" ]; }

cmd_libs() {
    libs_ok && return 0
    command -v mvn >/dev/null || die "Maven (mvn) is needed once to fetch the Kafka jars"
    say "first start: downloading Apache Kafka's jars (about 100 MB, once) from Maven Central"
    say "into compose/kafka/libs with mvn; this takes a minute or two (log: compose/kafka/libs/mvn.log)"
    # Resolve into libs/.new (git-ignored with libs/), then swap the jars in: an
    # interrupted download never leaves a half-filled libs/ that looks complete.
    local tmp="$LIBS/.new"
    rm -rf "$tmp"
    mkdir -p "$LIBS"
    # mvn runs in the background so a line every 10 s says how far it got (mvn's own
    # output is one line per file, written to the log).
    (cd "$HERE" && exec mvn -B -Dstyle.color=never dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$LIBS/mvn.log" 2>&1) &
    local mvn_pid=$! ticks=0 mvn_rc=0
    while kill -0 "$mvn_pid" 2>/dev/null; do
        sleep 1
        ticks=$((ticks + 1))
        if ((ticks % 10 == 0)); then
            say "... ${ticks}s: $(grep -c '^Downloaded from' "$LIBS/mvn.log" 2>/dev/null || true) files downloaded, $(find "$tmp" -name '*.jar' 2>/dev/null | wc -l | tr -d ' ') jars in place"
        fi
    done
    wait "$mvn_pid" || mvn_rc=$?
    if [ "$mvn_rc" -ne 0 ]; then
        cat "$LIBS/mvn.log" >&2
        rm -rf "$tmp"
        die "mvn could not resolve the jars of compose/kafka/pom.xml (see above)"
    fi
    rm -f "$LIBS/.pom.sha256"
    find "$LIBS" -maxdepth 1 -name '*.jar' -delete
    mv "$tmp"/*.jar "$LIBS"/
    rm -rf "$tmp"
    pom_hash >"$LIBS/.pom.sha256"
    say "$(find "$LIBS" -name '*.jar' | wc -l) jars cached"
}

# ---------------------------------------------------------------- process helpers

# Sets the array JAVA to the java command line (without the main class).
java_cmd() {
    command -v java >/dev/null || die "java (17+) is needed to run the local broker"
    local heap
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    JAVA=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$HERE/log4j2.xml" "-Dkafka.logs.dir=$LOGS"
        -cp "$LIBS/*")
}

recorded_pid() { [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true; }

# Is PID alive and really our broker (not a recycled pid of something else)?
is_our_broker() {
    local pid="$1" args
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    args="$(ps -ww -o args= -p "$pid" 2>/dev/null || true)"
    [[ "$args" == *kafka.Kafka* && "$args" == *"$PROPS"* ]]
}

answers() { "$PYTHON" "$HERE/ping.py" "$BOOTSTRAP" --timeout 2 >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

lock() {
    mkdir -p "$DIR"
    exec 9>"$DIR/.lock"
    if command -v flock >/dev/null; then
        flock -w 300 9 || die "another kafka.sh holds $DIR/.lock"
    fi
}

unlock() { exec 9>&-; }

LOG_START=0 # lines of server.log before this start: older lines are not this run's
log_tail() {
    echo "---- from $LOGS/server.log and stdout.log ----" >&2
    {
        tail -n "+$((LOG_START + 1))" "$LOGS/server.log" 2>/dev/null \
            | grep -E 'ERROR|FATAL|Exception:|Caused by' | tail -n 8
        tail -n 10 "$LOGS/stdout.log" 2>/dev/null
    } >&2 || true
    echo "----" >&2
}

# ---------------------------------------------------------------- up

render_props() {
    local quorum="controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT"
    local replication=1 min_isr=1
    if ((BROKERS > 1)); then
        quorum="controller.quorum.voters=$(cluster_voters)"
        replication=$((BROKERS < 3 ? BROKERS : 3))
        min_isr=$((replication - 1))
    fi
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@KAFKA_DATA_DIR@|$DATA|g" \
        -e "s|@KAFKA_NODE_ID@|$NODE_ID|g" \
        -e "s|@KAFKA_QUORUM@|$quorum|g" \
        -e "s|@KAFKA_REPLICATION@|$replication|g" \
        -e "s|@KAFKA_MIN_ISR@|$min_isr|g" \
        "$HERE/server.properties" >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
}

# A Kafka cluster id is a base64url UUID; one that starts with '-' would be read as an
# option by kafka-storage, so draw again.
new_cluster_id() {
    "$PYTHON" -c 'import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(cid)'
}

format_storage() {
    # Formatted once; later starts may use other ports (the single voter's endpoint is
    # updated by KRaft itself).
    [ -f "$DATA/meta.properties" ] && return 0
    local cluster_id quorum=(--standalone) features=()
    if ((BROKERS > 1)); then
        # Every node of a cluster shares one id; the static voters are in the properties.
        [ -s "$DIR/cluster.id" ] || new_cluster_id >"$DIR/cluster.id"
        cluster_id="$(cat "$DIR/cluster.id")"
        quorum=()
    else
        cluster_id="$(new_cluster_id)"
        # Without eligible leader replicas (KIP-966, on by default since Kafka 4.1). With
        # them, a lone broker killed with SIGKILL comes back out of every partition's ISR
        # (an unclean shutdown drops it from the ELR) and the controller makes it leader
        # again as the "last known leader": an unclean election, every partition in the
        # RECOVERING state, and Kafka does not promise a transaction's markers across an
        # unclean election (KAFKA-20716). Off, the lone replica stays in the ISR while it
        # is away and leads again after a clean election. Only a fresh format does it: a
        # data folder formatted with them is warned about below. A cluster keeps them:
        # there one node lost leaves the ISR of every partition non-empty.
        features=(--feature eligible.leader.replicas.version=0)
    fi
    say "formatting $DATA (cluster id $cluster_id)"
    mkdir -p "$DATA" "$LOGS"
    java_cmd
    if ! "${JAVA[@]}" kafka.tools.StorageTool format ${quorum[@]+"${quorum[@]}"} ${features[@]+"${features[@]}"} \
            --cluster-id "$cluster_id" --config "$PROPS" >"$LOGS/format.log" 2>&1; then
        cat "$LOGS/format.log" >&2
        rm -rf "$DATA"
        die "formatting the storage failed (see above)"
    fi
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            log_tail
            die "the broker exited during startup (logs in $LOGS)"
        fi
        if answers; then return 0; fi
        sleep 0.5
    done
    log_tail
    say "no answer on $BOOTSTRAP after ${KAFKA_START_TIMEOUT}s; stopping it"
    stop_pid "$pid"
    die "the broker did not become ready"
}

# Starts java for the broker of PROPS, detached; returns once PIDFILE holds its pid.
launch_broker() {
    # The shell writes its own pid, then becomes java (exec): the pid file holds the
    # broker's pid exactly. setsid: a Ctrl-C in the terminal does not reach the broker;
    # `down` stops it. fd 9 (our lock) is not inherited.
    java_cmd
    local detach=()
    if command -v setsid >/dev/null; then detach=(setsid); fi # none on macOS
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
    ${detach[@]+"${detach[@]}"} sh -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" "${JAVA[@]}" kafka.Kafka "$PROPS" \
        </dev/null >"$LOGS/stdout.log" 2>&1 9>&- &
    local tries=0
    while [ ! -s "$PIDFILE" ] && ((tries < 50)); do sleep 0.1; tries=$((tries + 1)); done
    [ -n "$(recorded_pid)" ] || die "could not start java (see $LOGS/stdout.log)"
}

# Sets STARTED=1 when this call started a new broker process.
STARTED=0
cmd_up() {
    if [ -n "$EXTERNAL" ]; then external_note started; return 0; fi
    lock
    cmd_libs
    local pid
    pid="$(recorded_pid)"
    if is_our_broker "$pid"; then
        if ! answers; then
            say "broker pid $pid is running but not answering yet; waiting"
            wait_ready "$pid"
        fi
        say "already running (pid $pid) on $BOOTSTRAP"
        unlock
        return 0
    fi
    if [ -n "$pid" ]; then
        if kill -0 "$pid" 2>/dev/null; then
            say "removing stale pid file (pid $pid is now another process, left alone)"
        else
            say "removing stale pid file (pid $pid is gone: the broker died or was killed)"
        fi
    fi
    rm -f "$PIDFILE"
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_busy "$port"; then
            die "127.0.0.1:$port is already in use by another process (another broker?);" \
                "set KAFKA_PORT to a free port, or KAFKA_BOOTSTRAP to use a running cluster"
        fi
    done
    mkdir -p "$DATA" "$LOGS"
    render_props
    format_storage
    if grep -q "eligible.leader.replicas.version', featureLevel=1" "$LOGS/format.log" 2>/dev/null; then
        say "warning: $DATA was formatted with eligible leader replicas on, so after a kill" \
            "its partitions come back by unclean elections (see format_storage);" \
            "'kafka.sh reset' deletes the data and formats it again without them"
    fi
    local t0=$SECONDS
    LOG_START="$(cat "$LOGS/server.log" 2>/dev/null | wc -l | tr -d ' ')"
    say "starting broker on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, data in $DIR)"
    launch_broker
    pid="$(recorded_pid)"
    wait_ready "$pid"
    STARTED=1
    say "ready (pid $pid) on $BOOTSTRAP after $((SECONDS - t0))s"
    unlock
}

# ---------------------------------------------------------------- down

stop_pid() {
    local pid="$1" deadline
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PIDFILE"
}

cmd_down() {
    if [ -n "$EXTERNAL" ]; then external_note stopped; return 0; fi
    [ -d "$DIR" ] || { say "not running"; return 0; }
    lock
    local pid
    pid="$(recorded_pid)"
    if [ -z "$pid" ]; then
        say "not running (no pid file)"
    elif is_our_broker "$pid"; then
        say "stopping broker (pid $pid)"
        stop_pid "$pid"
        say "stopped"
    else
        say "not running (stale pid file for pid $pid removed; that pid is not our broker)"
        rm -f "$PIDFILE"
    fi
    unlock
}

# ---------------------------------------------------------------- status, logs, reset, run

cmd_status() {
    if [ -n "$EXTERNAL" ]; then
        if "$PYTHON" "$HERE/ping.py" "${EXTERNAL%%,*}" --timeout 5; then return 0; fi
        return 1
    fi
    local pid
    pid="$(recorded_pid)"
    if is_our_broker "$pid"; then
        if answers; then
            say "running (pid $pid), answering on $BOOTSTRAP; data in $DIR"
            return 0
        fi
        say "running (pid $pid) but NOT answering on $BOOTSTRAP (starting, or stuck: see $LOGS)"
        return 1
    fi
    say "not running"
    return 1
}

cmd_logs() { tail -n "${1:-100}" "$LOGS/server.log"; }

cmd_reset() {
    if [ -n "$EXTERNAL" ]; then die "KAFKA_BOOTSTRAP is set: will not touch an external cluster"; fi
    if cluster_recorded; then cluster_down; fi
    cmd_down
    rm -rf "$DIR"
    say "removed $DIR"
}

cmd_run() {
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: kafka.sh run -- COMMAND [ARGS...]"
    if [ -n "$EXTERNAL" ]; then
        external_note started
        exec "$@"
    fi
    trap 'if [ "$STARTED" = 1 ]; then if ((BROKERS > 1)); then cluster_down; else cmd_down; fi; fi' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ((BROKERS > 1)); then cluster_up; else cmd_up; fi
    local rc=0
    KAFKA_BOOTSTRAP="$BOOTSTRAP" "$@" || rc=$?
    exit "$rc"
}

# A cluster of BROKERS > 1 nodes reuses the one-node functions above (compose/kafka/cluster.sh).
# shellcheck source=cluster.sh
. "$HERE/cluster.sh"

case "${1:-}" in
    up) if ((BROKERS > 1)); then cluster_up; else cmd_up; fi ;;
    down)
        if [ -z "$EXTERNAL" ] && cluster_recorded; then
            cluster_down
            [ ! -f "$DIR/kafka.pid" ] || cmd_down
        else
            cmd_down
        fi
        ;;
    status)
        if [ -z "$EXTERNAL" ] && { ((BROKERS > 1)) || cluster_recorded; }; then
            cluster_status
        else
            cmd_status
        fi
        ;;
    logs) shift; if ((BROKERS > 1)); then cluster_logs "$@"; else cmd_logs "$@"; fi ;;
    reset) cmd_reset ;;
    libs) cmd_libs ;;
    run) shift; cmd_run "$@" ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        [ -n "${1:-}" ] && [ "$1" != "-h" ] && [ "$1" != "--help" ] && exit 2
        exit 0
        ;;
esac
