#!/bin/bash
# The many-daemons mode (issue 16): `dragon --wlm test --nodes N` starts N daemons on this
# machine as N nodes of a tree, without ssh. The same client as on the test hosts
# (placement, join, status, signal, the registry, groups over nodes); PROGRAM's exit code;
# --label; a deeper tree (fan-out 2); a node that does not start and a node killed mid-run
# end the runtime with 125, naming the node. Nothing of any run is left. Runs in a pid
# namespace of its own (daemons are killed on purpose).
# Usage: local_test.sh BUILD_DIR
build=$(cd "$1" && pwd)
. "$(dirname "$0")/../integration/pidns.sh"
dragon=$build/tools/dragon
client=$build/tests/multinode/multinode-client
failures=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
base=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/dragon}
base=${base:-/tmp/dragon-$(id -u)}
nothing_left() { # nothing_left RUNTIME_ID
  if pgrep -f -- "dragon-node" >/dev/null; then echo "  a daemon is left"; return 1; fi
  if ls /dev/shm/dragon."$1".* >/dev/null 2>&1; then echo "  a segment is left"; return 1; fi
  if [ -e "$base/$1" ]; then echo "  left: $base/$1: $(ls "$base/$1")"; return 1; fi
  return 0
}
run() { # run TIMEOUT RUNTIME_ID ARGS...: dragon's output in $out, its status in $rc
  local t=$1 id=$2
  shift 2
  out=$(timeout "$t" "$dragon" --runtime-id "$id" "$@" 2>&1)
  rc=$?
}

# Requests between nodes go over the fabric (libfabric, tcp;ofi_rxm here): required, so a
# fabric that does not open fails the run.
export DRAGON_FABRIC_REQUIRED=1
run 60 tml1$sfx --wlm test --nodes 4 "$client"
echo "$out" | sed 's/^/  | /'
check "multinode-client on 4 nodes, over the fabric ($rc)" [ $rc -eq 0 ]
check "nothing left" nothing_left tml1$sfx
unset DRAGON_FABRIC_REQUIRED

# Without a fabric, along the tree: through intermediate nodes.
DRAGON_OFI_PROVIDER=no-such-provider run 60 tml2$sfx --wlm test --nodes 7 --fanout 2 "$client"
check "... and on 7 nodes in a tree of fan-out 2, three levels deep, without a fabric ($rc)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || echo "$out" | sed 's/^/  | /'
check "nothing left" nothing_left tml2$sfx

run 60 tml3$sfx --wlm test --nodes 3 sh -c 'exit 9'
check "PROGRAM's exit code is dragon's ($rc)" [ $rc -eq 9 ]

run 60 tml4$sfx --wlm test --nodes 3 --label "$build/examples/process-group"
echo "$out" | sed 's/^/  | /'
check "the process-group example on 3 nodes ($rc)" [ $rc -eq 0 ]
labels=$(grep -o '^\[[^]:]*:[0-9]*\] Hello' <<<"$out" | cut -d: -f1 | sort -u | tr '\n' ' ')
host=$(hostname)
check "--label: each node's lines carry its name ($labels)" [ "$labels" = "[$host-0 [$host-1 [$host-2 " ]
check "nothing left" nothing_left tml4$sfx

# A node whose daemon cannot start: the start fails, naming it.
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
cat >"$fake/dragon-node" <<SH
#!/bin/sh
case " \$* " in *" --node-id 2 "*) echo "no daemon for node 2 here" >&2; exit 1 ;; esac
exec "$build/tools/dragon-node" "\$@"
SH
chmod +x "$fake/dragon-node"
start=$SECONDS
out=$(DRAGON_NODE_EXE=$fake/dragon-node timeout 60 "$dragon" --runtime-id tml5$sfx --wlm test --nodes 4 true 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "a node that does not start: 125 ($rc)" [ $rc -eq 125 ]
check "... naming it" grep -q "node 2 ($host-2) did not start" <<<"$out"
check "... with what its command said" grep -q "no daemon for node 2 here" <<<"$out"
check "... at once ($((SECONDS - start)) s)" [ $((SECONDS - start)) -le 10 ]
check "nothing left" nothing_left tml5$sfx

# A node killed mid-run: the runtime ends, naming it.
log=$fake/hold.out
timeout 60 "$dragon" --runtime-id tml6$sfx --wlm test --nodes 4 "$client" hold >"$log" 2>&1 &
launcher=$!
for ((t = 0; t < 300; t++)); do
  grep -q "^holding" "$log" && break
  sleep 0.1
done
check "a run holds a process on each of 4 nodes" grep -q "^holding 4" "$log"
start=$SECONDS
pkill -KILL -f -- "dragon-node --link --node-id 3"
wait $launcher
rc=$?
sed 's/^/  | /' "$log"
check "a node killed mid-run ends the runtime: 125 ($rc)" [ $rc -eq 125 ]
check "... naming it" grep -q "node 3 ($host-3) was lost" "$log"
check "... within 10 s ($((SECONDS - start)) s)" [ $((SECONDS - start)) -le 10 ]
check "nothing left" nothing_left tml6$sfx

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "multinode (many-daemons mode): all checks passed"
