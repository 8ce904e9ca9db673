# shellcheck shell=bash
# A local cluster of BROKERS > 1 nodes (`BROKERS=3 kafka.sh up|down|status|logs`), sourced
# by kafka.sh and run only through it.
#
# Each node reuses kafka.sh's one-node functions: node_use points their globals (ports,
# PIDFILE, PROPS, DATA, LOGS, BOOTSTRAP) at one node's folder.

node_use() {
    NODE_ID="$1"
    KAFKA_PORT=$((BASE_PORT + 2 * (NODE_ID - 1)))
    KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
    PIDFILE="$DIR/node-$NODE_ID/kafka.pid"
    PROPS="$DIR/node-$NODE_ID/server.properties"
    DATA="$DIR/node-$NODE_ID/data"
    LOGS="$DIR/node-$NODE_ID/logs"
    # `status` asks a node on the port it was last started with (maybe another KAFKA_PORT).
    if [ "${2:-}" = keep ] && [ -f "$PROPS" ]; then
        local port
        port="$(sed -n 's/^advertised\.listeners=.*:\([0-9][0-9]*\)$/\1/p' "$PROPS")"
        [ -z "$port" ] || KAFKA_PORT="$port"
    fi
    BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
}

cluster_voters() {
    local i voters=()
    for ((i = 1; i <= BROKERS; i++)); do
        voters+=("$i@127.0.0.1:$((BASE_PORT + 2 * (i - 1) + 1))")
    done
    (IFS=,; echo "${voters[*]}")
}

cluster_bootstrap() {
    local i hosts=()
    for ((i = 1; i <= BROKERS; i++)); do hosts+=("127.0.0.1:$((BASE_PORT + 2 * (i - 1)))"); done
    (IFS=,; echo "${hosts[*]}")
}

# The node ids with a folder under DIR (whatever BROKERS says now).
recorded_nodes() {
    local d
    for d in "$DIR"/node-*; do [ -d "$d" ] && echo "${d##*-}"; done | sort -n
}

cluster_recorded() { [ -n "$(recorded_nodes)" ]; }

admin_python() {
    if [ -n "${KAFKA_ADMIN_PYTHON:-}" ]; then echo "$KAFKA_ADMIN_PYTHON"
    elif [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"
    else echo "$PYTHON"; fi
}

cluster_up() {
    if [ -n "$EXTERNAL" ]; then external_note started; return 0; fi
    lock
    cmd_libs
    if [ -s "$DIR/cluster.brokers" ] && [ "$(cat "$DIR/cluster.brokers")" != "$BROKERS" ]; then
        die "$DIR holds a cluster of $(cat "$DIR/cluster.brokers") nodes, not $BROKERS;" \
            "\`kafka.sh reset\` (deletes its data) or use that count"
    fi
    echo "$BROKERS" >"$DIR/cluster.brokers"
    local i pid port t0=$SECONDS to_start=() formats=() failed=0
    for ((i = 1; i <= BROKERS; i++)); do
        node_use "$i"
        pid="$(recorded_pid)"
        if is_our_broker "$pid"; then
            say "node $i already running (pid $pid) on $BOOTSTRAP"
            continue
        fi
        rm -f "$PIDFILE"
        for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
            if port_busy "$port"; then
                die "127.0.0.1:$port (node $i) is already in use by another process;" \
                    "set KAFKA_PORT to the first of $((2 * BROKERS)) free ports"
            fi
        done
        mkdir -p "$DATA" "$LOGS"
        render_props
        # Formatting starts a JVM per node: do them side by side.
        if [ ! -f "$DATA/meta.properties" ]; then
            [ -s "$DIR/cluster.id" ] || new_cluster_id >"$DIR/cluster.id"
            (format_storage) &
            formats+=($!)
        fi
        to_start+=("$i")
    done
    for pid in ${formats[@]+"${formats[@]}"}; do wait "$pid" || failed=1; done
    ((failed == 0)) || die "formatting a node's storage failed (see above)"
    # A node answers only once a majority of the voters runs: start all, then wait.
    declare -A log_start=()
    for i in ${to_start[@]+"${to_start[@]}"}; do
        node_use "$i"
        log_start[$i]="$(cat "$LOGS/server.log" 2>/dev/null | wc -l | tr -d ' ')"
        say "starting node $i on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, data in $DIR/node-$i)"
        launch_broker
        STARTED=1
    done
    for i in ${to_start[@]+"${to_start[@]}"}; do
        node_use "$i"
        LOG_START="${log_start[$i]}"
        wait_ready "$(recorded_pid)"
    done
    BOOTSTRAP="$(cluster_bootstrap)"
    if ! "$(admin_python)" "$HERE/cluster_ready.py" "$BOOTSTRAP" --brokers "$BROKERS" \
            --timeout "$KAFKA_START_TIMEOUT"; then
        die "the cluster does not list $BROKERS brokers; \`kafka.sh logs\`, \`kafka.sh down\`"
    fi
    say "cluster of $BROKERS ready on $BOOTSTRAP after $((SECONDS - t0))s"
    unlock
}

cluster_down() {
    if [ -n "$EXTERNAL" ]; then external_note stopped; return 0; fi
    lock
    local i pid stopping=() deadline
    # TERM to every node at once: a node stopping alone waits for a quorum that the
    # others, stopped one by one before it, no longer form.
    for i in $(recorded_nodes); do
        node_use "$i"
        pid="$(recorded_pid)"
        [ -n "$pid" ] || continue
        if is_our_broker "$pid"; then
            say "stopping node $i (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            stopping+=("$i:$pid")
        else
            say "node $i: stale pid file for pid $pid removed (not our broker)"
            rm -f "$PIDFILE"
        fi
    done
    deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    local entry alive=1
    while ((alive)) && ((SECONDS < deadline)); do
        alive=0
        for entry in ${stopping[@]+"${stopping[@]}"}; do
            if kill -0 "${entry#*:}" 2>/dev/null; then alive=1; fi
        done
        ((alive)) && sleep 0.2
    done
    for entry in ${stopping[@]+"${stopping[@]}"}; do
        node_use "${entry%%:*}"
        stop_pid "${entry#*:}" # KILL if still alive; removes the pid file
    done
    ((${#stopping[@]} == 0)) || say "stopped ${#stopping[@]} node(s)"
    unlock
}

cluster_status() {
    local i pid rc=0 nodes
    nodes="$(recorded_nodes)"
    [ -n "$nodes" ] || { say "cluster not running (no node folders in $DIR)"; return 1; }
    for i in $nodes; do
        node_use "$i" keep
        pid="$(recorded_pid)"
        if is_our_broker "$pid"; then
            if answers; then
                say "node $i running (pid $pid), answering on $BOOTSTRAP"
            else
                say "node $i running (pid $pid) but NOT answering on $BOOTSTRAP"
                rc=1
            fi
        else
            say "node $i not running"
            rc=1
        fi
    done
    return "$rc"
}

cluster_logs() {
    local i
    for i in $(recorded_nodes); do
        node_use "$i"
        echo "==== node $i: $LOGS/server.log"
        tail -n "${1:-40}" "$LOGS/server.log" 2>/dev/null || true
    done
}

