#!/usr/bin/env bash
# Start a replayflow workflow and read its completion with kcat alone (plus bash and od
# to write and read the Avro bytes). schemas/README.md explains every byte.
#
#   replayflow.sh start WORKFLOW INSTANCE_ID [INPUT_JSON]   prints the orchestrator's answer
#   replayflow.sh result INSTANCE_ID [TIMEOUT_SECONDS]      waits for and prints the completion
#
# KAFKA_BOOTSTRAP (default 127.0.0.1:9092) and REPLAYFLOW_NAMESPACE as for replayflow.
#
# What matters for any producer:
#   - the key is the instance id, and the partition is murmur2 of it, as Java clients pick
#     it: `-X partitioner=murmur2_random`. kcat's default (consistent_random) puts most
#     ids on another partition: the orchestrator dead-letters those starts as
#     WrongPartition, and kcat itself exits 0 all the same;
#   - the value is one Avro record in single-object encoding (C3 01, the 8-byte
#     CRC-64-AVRO fingerprint of the writer schema, little-endian, then the body);
#   - a 'replayflow-request-id' header asks the orchestrator for a Reply on
#     replayflow.replies (ACCEPTED, UNCHANGED or REJECTED with the reason); without it
#     a refused command only reaches replayflow.dlq.
# kcat reads replayflow's LZ4-compressed records as they are (librdkafka has LZ4).
set -euo pipefail

BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
NS="${REPLAYFLOW_NAMESPACE:-}"
topic() { echo "${NS:+$NS.}replayflow.$1"; }
KCAT=(kcat -b "$BOOTSTRAP" -X isolation.level=read_committed -q)

# Fingerprints of the schema versions this script writes and reads (schemas/README.md,
# "Single-object encoding"); a unit test checks them against the .avsc files.
FP_START_WORKFLOW_V1="81 52 fc 02 0e c3 d9 c5"
FP_COMPLETION_V1="9b 21 07 5f de d9 ed 42"
FP_REPLY_V1="25 3d 75 04 c9 f0 83 8e"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- writing Avro

hex_bytes() { for b in $1; do printf "\\x$b"; done; }

# A long: zig-zag, then 7 bits per byte, low group first.
write_long() {
    local n=$(($1 >= 0 ? $1 * 2 : -$1 * 2 - 1))
    while ((n > 0x7f)); do
        printf "\\x$(printf %02x $(((n & 0x7f) | 0x80)))"
        n=$((n >> 7))
    done
    printf "\\x$(printf %02x "$n")"
}

# A string: its length in bytes as a long, then its UTF-8 bytes.
write_string() {
    write_long "$(printf %s "$1" | wc -c)"
    printf %s "$1"
}

# ---------------------------------------------------------------- reading Avro

BYTES=()
POS=0
FILE=""
load() {
    FILE="$1"
    read -r -a BYTES <<<"$(od -An -v -tu1 "$FILE" | tr -s ' \n' ' ')"
    POS=10
}
fingerprint_of() { od -An -v -tx1 -j2 -N8 "$1" | tr -s ' \n' ' ' | sed 's/^ //;s/ $//'; }

read_long() {
    local shift=0 value=0 byte
    while :; do
        byte=${BYTES[$POS]}
        POS=$((POS + 1))
        value=$((value | ((byte & 0x7f) << shift)))
        ((byte & 0x80)) || break
        shift=$((shift + 7))
    done
    LONG=$(((value >> 1) ^ -(value & 1)))
}

read_string() {
    read_long
    STRING="$(dd if="$FILE" bs=1 skip="$POS" count="$LONG" 2>/dev/null)"
    POS=$((POS + LONG))
}

# ["null", "string"]: branch 0 is null.
read_optional_string() {
    read_long
    if ((LONG == 0)); then STRING=""; else read_string; fi
}

# The raw value of the last record with key $2 on topic $1 (all partitions, from the
# beginning), in $WORK/$3; false when there is none.
fetch_last() {
    local found partition offset
    found="$("${KCAT[@]}" -C -t "$1" -o beginning -e -f '%k\t%p\t%o\n' 2>/dev/null |
        awk -F'\t' -v key="$2" '$1 == key { last = $2 "\t" $3 } END { print last }')"
    [ -n "$found" ] || return 1
    partition="${found%%$'\t'*}"
    offset="${found##*$'\t'}"
    "${KCAT[@]}" -C -t "$1" -p "$partition" -o "$offset" -c 1 -f '%s' >"$WORK/$3"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    local workflow="$1" id="$2" input="${3:-null}" request
    request="kcat-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    {
        hex_bytes "c3 01 $FP_START_WORKFLOW_V1"
        write_string "$id"       # instance_id
        write_string "$workflow" # workflow
        write_string "$input"    # input: JSON text
        printf '\x00\x00\x00'    # version, parent_id, parent_step: null
    } >"$WORK/start.avro"
    "${KCAT[@]}" -P -t "$(topic commands)" -k "$id" -H "replayflow-request-id=$request" \
        -X partitioner=murmur2_random "$WORK/start.avro"
    # The answer: the Reply on replayflow.replies with this request id.
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if fetch_last "$(topic replies)" "$id" reply.avro; then
            if [ "$(fingerprint_of "$WORK/reply.avro")" != "$FP_REPLY_V1" ]; then
                echo "a newer Reply schema: decode it with an Avro library" >&2
                return 2
            fi
            load "$WORK/reply.avro"
            read_string # instance_id
            read_string
            local got="$STRING"
            read_string # command
            read_string
            local outcome="$STRING"
            read_long # at
            read_optional_string
            local status="$STRING"
            read_string
            local reason="$STRING"
            read_optional_string
            local kind="$STRING"
            if [ "$got" = "$request" ]; then
                if [ "$outcome" = REJECTED ]; then
                    echo "refused ($kind): $reason" >&2
                    return 1
                fi
                echo "$id $outcome $status"
                return 0
            fi
        fi
        sleep 0.5
    done
    echo "no orchestrator answered in time: the start waits on the log" >&2
    return 2
}

cmd_result() {
    local id="$1" timeout="${2:-60}" deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if fetch_last "$(topic completions)" "$id" completion.avro; then
            if [ "$(fingerprint_of "$WORK/completion.avro")" != "$FP_COMPLETION_V1" ]; then
                echo "a newer Completion schema: decode it with an Avro library" >&2
                return 2
            fi
            load "$WORK/completion.avro"
            read_string # instance_id
            read_string # workflow
            read_string # version
            read_string
            local status="$STRING" # COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT
            read_long # at
            read_optional_string
            if [ "$status" = COMPLETED ]; then
                echo "$STRING" # the output: JSON text
                return 0
            fi
            echo "$id ended $status" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "no completion for $id within $timeout s" >&2
    return 2
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    result) shift; cmd_result "$@" ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
