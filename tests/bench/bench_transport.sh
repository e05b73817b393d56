#!/bin/bash
# bench-transport (../shared/BENCHMARKS.md; issue 16): JSON lines on stdout, nothing else.
#   runtime.bringup / runtime.teardown: `dragon --wlm test --nodes N` (N daemons on this
#     machine as N nodes, fan-out 8) from start to PROGRAM's start, and from PROGRAM's end to
#     dragon's exit, for N = 1, 4, 16, 64 (median of 5; --quick: 3)
#   runtime.true: `dragon /bin/true` on 1 and on 3 test hosts (network namespaces with ssh,
#     tests/multinode/hosts.sh; needs root), median of 5 (--quick: 3)
#   fabric.rtt / fabric.bw: libfabric's fi_pingpong with tcp;ofi_rxm, rdm endpoints, between
#     two test hosts, 64 B and 1 MiB: the peer of the daemons' transport (not in yet: its own
#     rows are null with a note)
# Usage: bench_transport.sh BUILD_DIR [--quick]
build=$(cd "$1" && pwd)
quick=0
[ "${2:-}" = "--quick" ] && quick=1
reps=$((quick ? 3 : 5))
dragon=$build/tools/dragon
here=$(cd "$(dirname "$0")" && pwd)

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
row() { # row BENCH IMPL SIZE METRIC VALUE [NOTE]
  if [ -n "${6:-}" ]; then
    printf '{"bench":"%s","impl":"%s","size":%s,"metric":"%s","value":%s,"note":"%s"}\n' "$1" "$2" "$3" "$4" "$5" "$6"
  else
    printf '{"bench":"%s","impl":"%s","size":%s,"metric":"%s","value":%s}\n' "$1" "$2" "$3" "$4" "$5"
  fi
}

# Test hosts need root and a pid namespace of our own (every host process dies with it).
hosts_ok=0
if [ "$(id -u)" -eq 0 ] && unshare -pf --mount-proc true 2>/dev/null; then
  hosts_ok=1
  if [ -z "${DRAGON_TEST_PIDNS:-}" ]; then
    exec unshare -pf --mount-proc --kill-child env DRAGON_TEST_PIDNS=1 bash "$0" "$@"
  fi
fi

bringup() { # bringup NODES FANOUT: rows for bring-up and teardown
  local n=$1 k=$2 r t0 t1 t2 up=() down=()
  for ((r = 0; r < reps; r++)); do
    t0=$(now_ns)
    t1=$("$dragon" --wlm test --nodes "$n" --fanout "$k" date +%s%N 2>/dev/null)
    t2=$(now_ns)
    [ -n "$t1" ] || continue
    up+=($(((t1 - t0) / 1000)))
    down+=($(((t2 - t1) / 1000)))
  done
  local b="runtime.bringup" d="runtime.teardown"
  [ "$k" -eq 1 ] && b="runtime.bringup.chain" d="runtime.teardown.chain"
  row "$b" dragon "$n" bringup_ms "$(printf '%s\n' "${up[@]}" | median | awk '{printf "%.1f", $1 / 1000}')"
  row "$d" dragon "$n" teardown_ms "$(printf '%s\n' "${down[@]}" | median | awk '{printf "%.1f", $1 / 1000}')"
}

# Bring-up and teardown in the many-daemons mode (PROGRAM prints the time it started), with
# the default fan-out; and a chain (fan-out 1: 8 nodes, 7 levels), whose growth per node is
# the cost of one level of the tree.
for n in 1 4 16 64; do
  bringup "$n" 8
done
bringup 8 1

# On test hosts: dragon /bin/true on 1 and 3 hosts, and fi_pingpong between two hosts.
if [ $hosts_ok -eq 0 ]; then
  for n in 1 3; do row runtime.true dragon "$n" wall_ms null "needs root for test hosts"; done
  exit 0
fi
MN_PREFIX="dgmb$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
MN_SHARE="$build"
. "$here/../multinode/hosts.sh"
trap mn_down EXIT
trap 'exit 143' TERM INT
if ! mn_up 3 >/dev/null 2>&1; then
  for n in 1 3; do row runtime.true dragon "$n" wall_ms null "test hosts could not be made"; done
  exit 0
fi
ssh_cmd="ssh -F $MN_DIR/ssh_config"
for hosts in h0 h0,h1,h2; do
  n=$(tr ',' '\n' <<<"$hosts" | wc -l)
  times=()
  for ((r = 0; r < reps; r++)); do
    t0=$(now_ns)
    mn_run 0 env DRAGON_SSH="$ssh_cmd" "$dragon" --hosts "$hosts" /bin/true >/dev/null 2>&1 || continue
    times+=($((($(now_ns) - t0) / 1000)))
  done
  row runtime.true dragon "$n" wall_ms "$(printf '%s\n' "${times[@]}" | median | awk '{printf "%.1f", $1 / 1000}')"
done

if command -v fi_pingpong >/dev/null; then
  for size in 64 1048576; do
    iters=$((size > 4096 ? 200 : 2000))
    mn_run 1 timeout 60 fi_pingpong -p 'tcp;ofi_rxm' -e rdm -S "$size" -I "$iters" >/dev/null 2>&1 &
    server=$!
    out=""
    for ((t = 0; t < 50; t++)); do # the server listens within a moment; the client retries
      out=$(mn_run 0 timeout 60 fi_pingpong -p 'tcp;ofi_rxm' -e rdm -S "$size" -I "$iters" "$(mn_addr 1)" 2>/dev/null) && break
      sleep 0.1
    done
    wait $server 2>/dev/null
    # "bytes #sent #ack total time MB/sec usec/xfer Mxfers/sec"
    line=$(grep -E '^[0-9]' <<<"$out" | tail -1)
    usec=$(awk '{print $7}' <<<"$line")
    mbps=$(awk '{print $6}' <<<"$line")
    if [ "$size" -eq 64 ]; then
      row fabric.rtt fi_pingpong "$size" rtt_us "$(awk -v u="${usec:-0}" 'BEGIN {printf "%.1f", 2 * u}')"
      row fabric.rtt dragon "$size" rtt_us null "the daemons' libfabric transport is not in yet"
    else
      row fabric.bw fi_pingpong "$size" bw_MBps "${mbps:-null}"
      row fabric.bw dragon "$size" bw_MBps null "the daemons' libfabric transport is not in yet"
    fi
  done
else
  row fabric.rtt fi_pingpong 64 rtt_us null "fi_pingpong (libfabric-bin) is not installed"
fi
