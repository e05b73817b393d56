#!/bin/bash
# dragon across three real test hosts (tests/multinode/hosts.sh; issue 16): run from h0 with
# --hosts h0,h1,h2 over ssh. The process-group example prints three host names; PROGRAM's
# exit code is dragon's; a process placed on each host by name and by id runs there and is
# joined from h0; a host that cannot be reached fails the start, naming it; a daemon killed
# mid-run, and a host that vanishes mid-run, end the runtime in bounded time with 125 and
# the host's name. After each run nothing of the runtime is left on any host.
# Usage: launch_test.sh BUILD_DIR
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
. "$here/../integration/pidns.sh"
MN_PREFIX="dgml${sfx:0:6}"
MN_SHARE="$build" # the hosts run the build, wherever it is (under /tmp in a CI clone)
. "$here/hosts.sh"

failures=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

trap mn_down EXIT
trap 'exit 143' TERM INT
mn_up 3
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "FAIL: mn_up"; exit 1; }

dragon=$build/tools/dragon
# Node loss is seen through ssh's keep-alive when a host vanishes (no FIN ever comes).
ssh_cmd="ssh -F $MN_DIR/ssh_config -o ServerAliveInterval=1 -o ServerAliveCountMax=3"
on_h0() { # on_h0 TIMEOUT ARGS...: dragon on h0 over the three hosts
  local t=$1
  shift
  mn_run 0 timeout "$t" env DRAGON_SSH="$ssh_cmd" "$dragon" "$@"
}

# Nothing of any runtime on any host: no daemon, no segment, no runtime directory.
nothing_left() {
  local i
  for i in 0 1 2; do
    if mn_run "$i" pgrep -x dragon-node >/dev/null; then echo "  h$i: a daemon is left"; return 1; fi
    if mn_run "$i" sh -c 'ls /dev/shm | grep -q "^dragon\."'; then echo "  h$i: a segment is left"; return 1; fi
    if mn_run "$i" sh -c 'ls /tmp/dragon-0 2>/dev/null | grep -q .'; then
      echo "  h$i: a runtime directory is left"; return 1
    fi
  done
}

out=$(on_h0 60 --hosts h0,h1,h2 --label "$build/examples/process-group" 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "the process-group example on 3 hosts exits 0 ($rc)" [ $rc -eq 0 ]
hosts=$(grep -o 'Hello from host h[0-9]' <<<"$out" | awk '{print $4}' | sort -u | tr '\n' ' ')
check "... and prints 3 distinct host names ($hosts)" [ "$hosts" = "h0 h1 h2 " ]
labelled() { ! grep 'Hello from host' <<<"$out" | grep -vq '^\[\(h[0-2]\):[0-9]*\] Hello from host \1,'; }
check "... each line labelled with the host it came from" labelled
check "nothing left after it" nothing_left

out=$(on_h0 60 --hosts h0,h1,h2 sh -c 'exit 7' 2>&1)
rc=$?
check "PROGRAM's exit code is dragon's on 3 hosts ($rc)" [ $rc -eq 7 ]

# A client on h0 places processes on h1 (by name) and h2 (by id), joins them and reads their
# exit codes and where they ran.
out=$(DRAGON_FABRIC_REQUIRED=1 on_h0 60 --hosts h0,h1,h2 "$build/tests/multinode/multinode-client" 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "multinode-client: placement, join, status, signal and registry across hosts, over the fabric ($rc)" [ $rc -eq 0 ]
check "nothing left after it" nothing_left

out=$(on_h0 60 --hosts h0,h1,h9 true 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "a host that cannot be reached fails the start: 125 ($rc)" [ $rc -eq 125 ]
check "... naming it" grep -q "node 2 (h9)" <<<"$out"
check "nothing left after it" nothing_left

# A daemon killed mid-run (inside h2's own pid namespace): the runtime ends, naming h2.
mn_run 0 sh -c "DRAGON_SSH='$ssh_cmd' timeout 60 '$dragon' --hosts h0,h1,h2 '$build/tests/multinode/multinode-client' hold >'$MN_DIR/hold.out' 2>&1; echo \$? >'$MN_DIR/hold.rc'" &
launcher=$!
for ((t = 0; t < 300; t++)); do
  grep -q "^holding" "$MN_DIR/hold.out" 2>/dev/null && break
  sleep 0.1
done
check "a run holds a process on every host" grep -q "^holding" "$MN_DIR/hold.out"
start=$SECONDS
mn_run 2 pkill -KILL -x dragon-node
wait $launcher
took=$((SECONDS - start))
sed 's/^/  | /' "$MN_DIR/hold.out"
check "a daemon killed mid-run ends the runtime: 125 ($(cat "$MN_DIR/hold.rc"))" [ "$(cat "$MN_DIR/hold.rc")" = 125 ]
check "... naming its host" grep -q "node 2 (h2) was lost" "$MN_DIR/hold.out"
check "... within 15 s ($took s)" [ $took -le 15 ]
check "nothing left after it" nothing_left

# A host that vanishes (its namespaces die with their pid 1): no FIN comes; ssh's keep-alive
# notices in about 3 s.
mn_run 0 sh -c "DRAGON_SSH='$ssh_cmd' timeout 60 '$dragon' --hosts h0,h1,h2 '$build/tests/multinode/multinode-client' hold >'$MN_DIR/gone.out' 2>&1; echo \$? >'$MN_DIR/gone.rc'" &
launcher=$!
for ((t = 0; t < 300; t++)); do
  grep -q "^holding" "$MN_DIR/gone.out" 2>/dev/null && break
  sleep 0.1
done
start=$SECONDS
kill -KILL "${MN_HOLDERS[1]}"
wait $launcher
took=$((SECONDS - start))
sed 's/^/  | /' "$MN_DIR/gone.out"
check "a host that vanishes mid-run ends the runtime: 125 ($(cat "$MN_DIR/gone.rc"))" [ "$(cat "$MN_DIR/gone.rc")" = 125 ]
check "... naming it" grep -q "node 1 (h1) was lost" "$MN_DIR/gone.out"
check "... within 20 s ($took s)" [ $took -le 20 ]
check "no daemon left on h0 or h2" test -z "$(mn_run 0 pgrep -x dragon-node; mn_run 2 pgrep -x dragon-node)"

mn_down
trap - EXIT
[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "multinode launch: all checks passed"
