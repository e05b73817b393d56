#!/usr/bin/env bash
# The real launcher and daemon: exit codes, signals, output relay, teardown, dragon-cleanup
# after SIGKILL, the daemon's refusal of another uid, the runtime's secret token and segment
# names another user cannot take first. Every wait is bounded.
set -uo pipefail
build=$1
topologies=${2:-}
. "$(dirname "$0")/pidns.sh" # a pid namespace of its own; $sfx
dragon="$build/tools/dragon"
cleanup_tool="$build/tools/dragon-cleanup"
work=$(mktemp -d)
fails=0
trap 'rm -rf "$work"' EXIT

check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

base="${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/dragon}"
base="${base:-/tmp/dragon-$(id -u)}"

# Nothing of runtime $1 is left: no process naming it, no segment, no runtime directory.
nothing_left() {
  local rt=$1
  if grep -lsa "DRAGON_RUNTIME_ID=$rt" /proc/[0-9]*/environ >/dev/null 2>&1; then
    echo "  process left: $(grep -lsa "DRAGON_RUNTIME_ID=$rt" /proc/[0-9]*/environ)"; return 1
  fi
  if grep -lsa -- "--runtime-id.$rt" /proc/[0-9]*/cmdline >/dev/null 2>&1; then
    echo "  daemon left"; return 1
  fi
  if ls /dev/shm/dragon."$rt".* >/dev/null 2>&1; then echo "  segment left"; return 1; fi
  if [ -e "$base/$rt" ]; then echo "  directory left: $base/$rt"; return 1; fi
  return 0
}

# Start the launcher in the background (so that $! is the launcher itself), with a watchdog
# that SIGKILLs it after 60 s should a check go wrong. Sets $launcher.
start_bg() { # start_bg OUT ERR ARGS...
  local out=$1 err=$2; shift 2
  "$dragon" "$@" > "$out" 2> "$err" &
  launcher=$!
  ( sleep 60; kill -KILL $launcher 2>/dev/null ) >/dev/null 2>&1 &
  watchdogs+=($!)
}
watchdogs=()

# Wait (at most 10 s) until file $1 holds a line matching $2.
wait_for_line() {
  for _ in $(seq 1000); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.01
  done
  return 1
}

out=$(timeout 30 "$dragon" --runtime-id tl1$sfx /bin/echo hello world); rc=$?
check "echo: output relayed" [ "$out" = "hello world" ]
check "echo: exit code 0" [ $rc -eq 0 ]
check "echo: nothing left" nothing_left tl1$sfx

timeout 30 "$dragon" sh -c 'exit 3'; rc=$?
check "exit code passed through (3)" [ $rc -eq 3 ]
timeout 30 "$dragon" sh -c 'kill -TERM $$'; rc=$?
check "killed by SIGTERM: 143" [ $rc -eq 143 ]

err=$(timeout 30 "$dragon" no-such-program-xyz 2>&1 >/dev/null); rc=$?
check "missing program: 127" [ $rc -eq 127 ]
check "missing program: named in the error" grep -q "no-such-program-xyz" <<<"$err"
timeout 30 "$dragon" --no-such-option true 2>/dev/null; rc=$?
check "bad option: 2" [ $rc -eq 2 ]
check "--help prints usage" sh -c "'$dragon' --help | grep -q 'Usage: dragon'"
# A bad option: one line, the program named one way (issue 12, item 9).
err=$(timeout 30 "$dragon" --no-such-option true 2>&1)
check "bad option: one line naming the option ($err)" [ "$err" = "dragon: unknown option '--no-such-option'; try 'dragon --help'" ]
err=$(timeout 30 "$cleanup_tool" --no-such-option 2>&1); rc=$?
check "dragon-cleanup, bad option: 2, one line ($err)" [ $rc -eq 2 -a "$err" = "dragon-cleanup: unknown option '--no-such-option'; try 'dragon-cleanup --help'" ]

# A program outside a runtime that ends early leaves its pool: the next run is told what to
# do, and dragon-cleanup lists it (dry run), then removes it (issue 12, bug 6).
lrt=tlc$sfx
out=$(DRAGON_RUNTIME_ID=$lrt timeout 30 "$build/tests/integration/pool-client" leave left 2>&1)
check "a pool left behind by a program that ended early" [ "$out" = "leave 0" ]
err=$(DRAGON_RUNTIME_ID=$lrt timeout 30 "$build/tests/integration/pool-client" create left 2>&1); rc=$?
check "its name is taken next time: 6 ($rc)" grep -q "^create 6$" <<<"$err"
check "... and the message says what to do" grep -q "dragon-cleanup -r $lrt" <<<"$err"
out=$(timeout 30 "$cleanup_tool" --dry-run -r $lrt 2>&1)
check "dragon-cleanup --dry-run lists the segment" grep -q "^would remove /dev/shm/dragon\.$lrt\.0\.pool\.left" <<<"$out"
check "... and counts what it would remove ($(tail -1 <<<"$out"))" [ "$(tail -1 <<<"$out")" = "dragon-cleanup: would remove 1 segment of runtime '$lrt'" ]
check "... and removes nothing" ls /dev/shm/dragon.$lrt.0.pool.left*
out=$(timeout 30 "$cleanup_tool" -r $lrt 2>&1)
check "dragon-cleanup removes it ($out)" [ "$out" = "dragon-cleanup: removed 1 segment of runtime '$lrt'" ]
check "... and nothing of it is left" nothing_left $lrt
# An MPI job's shared-memory directory (Open MPI's segments) of a runtime that died.
mkdir -m 700 /dev/shm/dragon.$lrt.0.mpi.1 && : >/dev/shm/dragon.$lrt.0.mpi.1/vader_segment.x.0
out=$(timeout 30 "$cleanup_tool" -r $lrt 2>&1)
check "dragon-cleanup removes an MPI job's directory ($out)" [ "$out" = "dragon-cleanup: removed 1 segment of runtime '$lrt'" ]
check "... with what it held" nothing_left $lrt
check "--help documents exit statuses and stdin" sh -c "'$dragon' --help | grep -q 'Exit status:' && '$dragon' --help | grep -q 'standard input'"
check "--version" sh -c "'$dragon' --version | grep -q '^dragon [0-9]'"
err=$(timeout 30 "$dragon" --runtime-id 'bad/id' true 2>&1); rc=$?
check "bad runtime id: 2, explained (status)" [ $rc -eq 2 ]
check "bad runtime id: 2, explained (message)" grep -q "runtime-id" <<<"$err"
# One limit for runtime ids, the pools' (segment names carry them): 33 characters are refused
# where the id enters, 32 work end to end, with the longest pool name too.
err=$(timeout 30 "$dragon" --runtime-id "$(printf 'i%.0s' $(seq 33))" true 2>&1); rc=$?
check "runtime id of 33 characters: 2" [ $rc -eq 2 ]
check "runtime id of 33 characters: says 1 to 32" grep -q "1 to 32" <<<"$err"
check "--help gives the same limit" sh -c "'$dragon' --help | grep -q '1 to 32'"
rt32=$(printf 't32x%028s' "$sfx" | tr ' ' 0)
pool64=$(printf 'p%063d' 0)
out=$(timeout 30 "$dragon" --runtime-id "$rt32" "$build/tests/integration/pool-client" create "$pool64" 2>&1); rc=$?
check "runtime id of 32 characters: a pool is created (exit 0)" [ $rc -eq 0 ]
check "runtime id of 32 characters: its segment" grep -qx "create 0 /dragon\.$rt32\.0\.pool\.$pool64\.[0-9a-f]\{16\}" <<<"$out"
check "runtime id of 32 characters: nothing left" nothing_left "$rt32"
err=$(timeout 30 "$dragon" 2>&1); rc=$?
check "no PROGRAM: 2, explained (status)" [ $rc -eq 2 ]
check "no PROGRAM: 2, explained (message)" grep -q "no PROGRAM" <<<"$err"

# A daemon that cannot start: 125 and a clear message, nothing left.
err=$(DRAGON_NODE_EXE=/bin/false timeout 30 "$dragon" --runtime-id tl10$sfx true 2>&1); rc=$?
check "daemon fails to start: 125" [ $rc -eq 125 ]
check "daemon fails to start: said so" grep -q "node daemon did not start" <<<"$err"
check "daemon fails to start: nothing left" nothing_left tl10$sfx
err=$(DRAGON_NODE_EXE=/no/such/dragon-node timeout 30 "$dragon" true 2>&1); rc=$?
check "daemon missing: 125, named (status)" [ $rc -eq 125 ]
check "daemon missing: 125, named (message)" grep -q "/no/such/dragon-node" <<<"$err"
err=$(timeout 30 "$dragon" --topology /no/such.xml true 2>&1); rc=$?
check "--topology with a missing file: 2, named (status)" [ $rc -eq 2 ]
check "--topology with a missing file: 2, named (message)" grep -q "/no/such.xml" <<<"$err"

# Bad requests to the daemon get an error reply and change nothing: garbage, a message of
# another protocol version (and one in version 1's JSON), descriptors sent with an op that
# takes none, a spawn whose "fd" streams have no descriptor, an unknown op, a huge puid
# list; the daemon still answers afterwards (docs/protocol.md).
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import cbor2" 2>/dev/null; then
  out=$(timeout 60 "$dragon" /usr/bin/python3 -c '
import cbor2, json, os, socket
def ask(payload, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(os.environ["DRAGON_NODE_SOCKET"])
    if isinstance(payload, dict):
        payload = dict(payload); payload.setdefault("v", 2)
        data = cbor2.dumps(payload)
    else:
        data = payload
    socket.send_fds(s, [data], list(fds)) if fds else s.send(data)
    r = cbor2.loads(s.recv(1 << 20))
    s.close()
    return "%d %d %s" % (r["status"], r["id"], r.get("error", "").replace(" ", "_"))
print("garbage", ask(b"\xff\x00not json"))
print("old-version", ask({"v": 1, "op": "hello", "id": 8}))
print("json", ask(json.dumps({"op": "hello", "id": 9}).encode()))
print("fds-with-hello", ask({"op": "hello", "id": 1}, [0]))
print("fd-missing", ask({"op": "spawn", "id": 2, "program": "true", "stdin": "fd"}))
print("fd-extra", ask({"op": "spawn", "id": 3, "program": "true"}, [0, 1]))
print("unknown-op", ask({"op": "frobnicate", "id": 4}))
print("puids-too-many", ask({"op": "status", "id": 5, "puids": list(range(5000))}))
print("signal-bad", ask({"op": "signal", "id": 6, "puid": int(os.environ["DRAGON_PUID"]), "signal": 999}))
print("still-alive", ask({"op": "hello", "id": 7}))
' 2>/dev/null)
  check "daemon: garbage refused as malformed (20)" grep -q "^garbage 20 " <<<"$out"
  check "daemon: another version refused, both named (21)" grep -q "^old-version 21 8 .*version_1;.*version_2" <<<"$out"
  check "daemon: version 1 JSON refused as another version (21)" grep -q "^json 21 .*JSON" <<<"$out"
  check "daemon: descriptors with hello refused" grep -q "^fds-with-hello 8 1 " <<<"$out"
  check "daemon: spawn missing its descriptor refused" grep -q "^fd-missing 8 2 " <<<"$out"
  check "daemon: spawn with extra descriptors refused" grep -q "^fd-extra 8 3 " <<<"$out"
  check "daemon: unknown op" grep -q "^unknown-op 16 4 unknown_op" <<<"$out"
  check "daemon: too many puids refused as malformed, said why" grep -q "^puids-too-many 20 5 .*puids" <<<"$out"
  check "daemon: bad signal refused" grep -q "^signal-bad 1 6 " <<<"$out"
  check "daemon: still answers" grep -q "^still-alive 0 7" <<<"$out"
else
  echo "skip raw-protocol checks (needs /usr/bin/python3 with cbor2: apt-get install python3-cbor2)"
fi

# The environment a managed process gets.
out=$(timeout 30 "$dragon" --runtime-id tl2$sfx sh -c 'echo "$DRAGON_RUNTIME_ID $DRAGON_NODE_ID"; test -S "$DRAGON_NODE_SOCKET" && echo socket')
check "DRAGON_* environment" [ "$out" = "tl2$sfx 0
socket" ]

# The runtime's secret token (segment names others cannot guess, docs/pool.md): 128 bits in
# the environment of the daemon and of every managed process, on no command line; a process
# started with an environment of its own gets it too, and finds its creator's pool.
out=$(timeout 30 "$dragon" --runtime-id tl11$sfx sh -c 'echo "$DRAGON_RUNTIME_TOKEN"; tr "\0" " " < /proc/$PPID/cmdline; echo')
token=$(sed -n 1p <<<"$out")
daemon_cmdline=$(sed -n 2p <<<"$out")
check "token: 32 hex digits in the environment" grep -qxE '[0-9a-f]{32}' <<<"$token"
check "token: PROGRAM's parent is dragon-node" grep -q "dragon-node --runtime-id tl11$sfx" <<<"$daemon_cmdline"
not_in() { [ -n "$1" ] && [[ "$2" != *"$1"* ]]; } # not_in NEEDLE HAYSTACK
check "token: not on dragon-node's command line" not_in "$token" "$daemon_cmdline"
out=$(timeout 30 "$dragon" sh -c 'echo "$DRAGON_RUNTIME_TOKEN"')
check "token: another one per runtime" not_in "$out" "$token"
out=$(timeout 30 "$dragon" "$build/tests/integration/pool-client" child-attach kin 2>&1)
check "token: a process with an environment of its own finds the pool" grep -qx "child-attach 0" <<<"$out"

# Another user who pre-creates the name a pool would have if names were guessable does not
# stop the pool; outside a runtime (guessable names) the pool is refused with the owner named.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  squat=/dev/shm/dragon.tl12$sfx.0.pool.mine
  setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c ": > $squat"
  out=$(timeout 30 "$dragon" --runtime-id tl12$sfx "$build/tests/integration/pool-client" create mine 2>&1); rc=$?
  check "squatted name: the pool is created all the same" [ $rc -eq 0 ]
  check "squatted name: under a name of its own" grep -qx "create 0 /dragon\.tl12$sfx\.0\.pool\.mine\.[0-9a-f]\{16\}" <<<"$out"
  check "squatted name: the squatter's file is not touched" [ "$(stat -c %U "$squat")" = nobody ]
  rm -f "$squat"
  check "squatted name: nothing left" nothing_left tl12$sfx
  squat=/dev/shm/dragon.u$(id -u).0.pool.squat$sfx
  setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c ": > $squat"
  out=$(env -u DRAGON_RUNTIME_ID -u DRAGON_RUNTIME_TOKEN -u DRAGON_NODE_ID timeout 30 "$build/tests/integration/pool-client" create squat$sfx 2>&1); rc=$?
  rm -f "$squat"
  check "outside a runtime: a squatted name is refused" [ $rc -eq 1 ]
  check "outside a runtime: ... naming the segment and its owner" grep -q "$squat.*uid $(id -u nobody)" <<<"$out"
else
  echo "skip squatter tests (need root and setpriv)"
fi

# Line relay: 4 writers in one program, 2000 lines each; every line arrives whole.
timeout 60 "$dragon" sh -c 'for w in 1 2 3 4; do (i=0; while [ $i -lt 2000 ]; do echo "w$w-line-$i-abcdefghijklmnopqrstuvwxyz"; i=$((i+1)); done) & done; wait' > "$work/lines"
check "relay: 8000 lines" [ "$(wc -l < "$work/lines")" -eq 8000 ]
check "relay: no line mixed" [ "$(grep -cvE '^w[1-4]-line-[0-9]+-abcdefghijklmnopqrstuvwxyz$' "$work/lines")" -eq 0 ]
check "relay: stderr relayed" sh -c "timeout 30 '$dragon' sh -c 'echo oops >&2' 2>&1 >/dev/null | grep -qx oops"

# PROGRAM's stdin: a pipe or a file is passed on; a closed stdin reads as end of input; a
# terminal (a pty from `script`) is fed through the launcher.
out=$(echo piped-input | timeout 30 "$dragon" sh -c 'read x; echo "got $x"')
check "stdin: a pipe reaches PROGRAM" [ "$out" = "got piped-input" ]
printf 'line-a\nline-b\n' > "$work/in.txt"
out=$(timeout 30 "$dragon" cat < "$work/in.txt")
check "stdin: a file reaches PROGRAM" [ "$out" = "line-a
line-b" ]
out=$(timeout 30 "$dragon" sh -c 'read x || echo eof' <&-)
check "stdin: closed reads as EOF" [ "$out" = "eof" ]
if command -v script >/dev/null; then
  out=$(printf 'typed-line\n' | timeout 30 script -qfec "$dragon sh -c 'read x; echo got-\$x'" /dev/null | tr -d '\r')
  check "stdin: a terminal is fed to PROGRAM" grep -qx "got-typed-line" <<<"$out"
fi

# Processes created from inside the runtime (dragon_process_*), with a policy's CPU and GPU
# affinity on a fake 4-GPU NVIDIA node.
if [ -n "$topologies" ]; then
  out=$(DRAGON_TOPOLOGY_XML="$topologies/nvidia-4gpu.xml" timeout 60 "$dragon" "$build/tests/integration/process-client")
  has() { grep -qx "$1" <<<"$out"; }
  check "process: created" has "create 0"
  check "process: bound to CPU 0 and GPU 2 (CUDA order by PCI bus)" has "child cpus=0 gpu=2 order=PCI_BUS_ID"
  check "process: exit code joined" has "join 0 exit 5"
  check "process: join with timeout 0" has "join-timeout 4"
  check "process: join with a short timeout" has "join-short-timeout 4"
  check "process: signalled, 143" has "join-signalled 0 exit 143"
  check "process: GPU 9 does not exist" has "bad-gpu 5"
  check "process: CPU 100000 does not exist" has "bad-cpu 5"
  check "process: missing program" has "missing 5"
  check "process: unknown puid" has "unknown-puid 5"
  check "group: started" has "group-start 0"
  check "group: joined" has "group-join 0"
  check "group: every member exited 2" has "group-exit-codes 1"
  check "group: group policy over template (CPU 0, GPU 1)" [ "$(grep -cx 'member cpus=0 gpu=1' <<<"$out")" -eq 3 ]
  check "group: join times out while members run" has "sleepers-join-timeout 4"
  check "group: stop terminates every member (143)" has "sleepers-terminated 1"
  check "group: a member that cannot start is named" has "group-bad-start 5 1"
  check "group: the others are stopped then" has "group-bad-start-stopped 1"
  out=$(DRAGON_TOPOLOGY_XML="$topologies/nvidia-4gpu.xml" timeout 60 "$dragon" "$build/tests/integration/process-client-cpp" 2>/dev/null)
  check "C++ Process: exit code" has "cpp-join 4"
  check "C++ Process: bound to CPU 0" has "cpp-child 0"
  check "C++ Process: join timeout" has "cpp-timeout 1"
  check "C++ Process: killed, 137" has "cpp-killed 137"
  check "C++ Process: missing program throws NOT_FOUND" has "cpp-missing 5"
  check "C++ Process: status running" has "cpp-status-running 1"
  check "C++ Process: status exited, 137" has "cpp-status-exited 1 137"
  check "C++ Process: piped stdin and stdout" has "cpp-piped 1 SHOUT"
  check "C++ Process: piped process exits 0" has "cpp-piped-exit 0"
  check "C++ ProcessGroup: restart on failure, then the last status" has "cpp-group-restart 1 9 1"
  check "C++ Registry: a channel found by name in another process" has "cpp-consumer got hello-through-the-registry"
  check "C++ Registry: the consumer exits 0" has "cpp-consumer-exit 0"
  check "C++ Registry: wrong kind refused" has "cpp-registry-kind 1"
  check "C++ Registry: lookup timeout" has "cpp-registry-timeout 4"
  check "C++ System: one node, 4 GPUs, 4 policies on it" has "cpp-system 1 4 4 same-host"
  check "Registry: queue, lock, semaphore, event, barrier, pool and a block by name" has "cpp-objects-child queue 41 lock 1 block in-place size-ok 1"
  check "Registry: the other side saw the semaphore, the event and the barrier" has "cpp-objects 1 1 exit 0"
  check "Registry from C: look up and attach in one call" has "c-registry-attach 0 42 wrong-kind 1 1"
  check "Registry from C: a pool by name" has "c-registry-attach-pool 0"
  check "Registry: a queue of another item type refused" has "cpp-registry-queue-type 1"
  out=$(env -u DRAGON_NODE_SOCKET timeout 30 "$build/tests/integration/process-client" 2>/dev/null | head -1)
  check "process: outside a runtime, DRAGON_NOT_IN_RUNTIME (not CLOSED)" [ "$out" = "create 22" ]
  out=$(env -u DRAGON_PUID -u DRAGON_ROLE timeout 30 "$build/tests/integration/runtime-client" --whoami outside 0)
  check "identity outside a runtime: NOT_IN_RUNTIME, no role, the executable found" [ "$out" = "whoami outside self 22 puid-env-match 0 role - rank 22 0/0 exe-ok 1" ]
fi

# Process state, pipes and inherited stdio, restart on failure, the registry, the system's
# nodes and GPU policies, placement by host, wait mode: tests/integration/runtime_client.c.
if [ -n "$topologies" ]; then
  out=$(DRAGON_TOPOLOGY_XML="$topologies/nvidia-4gpu.xml" timeout 120 "$dragon" --runtime-id tl8$sfx "$build/tests/integration/runtime-client" 2>"$work/rc.err")
  has() { grep -qx "$1" <<<"$out"; }
  check "query: a running process" has "query-running 0 1 1 -1"
  check "a process the runtime started starts and joins one of its own" has "grandchild 0 exit 7"
  check "query: an ended one (137, no restart, node 0)" has "query-exited 0 1 137 0 0"
  check "query: unknown puid" has "query-unknown 5"
  check "query: struct_size not set" has "query-bad-size 1"
  check "pipes: stdin and stdout piped to the creator" has "pipe-create 0 1 1 -1"
  check "pipes: round trip through cat" has "pipe-roundtrip 1 1 exit 0"
  check "pipes: refused without create_with_pipes" has "pipe-without-ends 1"
  check "inherit: the creator's stdout" has "inherit-stdout 0 1"
  check "stdin RELAY refused" has "stdin-relay 1"
  check "restart: until success (2 restarts, exit 0)" has "restart-until-success 0 exit 0 restarts 2"
  check "restart: gives up after max (exit 3)" has "restart-gives-up 0 exit 3 restarts 2"
  check "restart: after a SIGKILL" has "restart-after-kill 1 1"
  check "restart: stop ends it for good" has "stop-ends-for-good 0 0 exit 143 restarts 1"
  check "restart: logged" grep -q "failed with exit status 3; restarting" "$work/rc.err"
  check "restart: each restart logged when it happens" grep -q "(sh): restart 2 of 2$" "$work/rc.err"
  # Stopped while waiting to restart: the last restart the log names is the status's count.
  read -r bpuid brestarts < <(sed -n 's/^backoff-stop \([0-9]*\) restarts \([0-9]*\)$/\1 \2/p' <<<"$out")
  blogged=$(grep "process $bpuid (sh)" "$work/rc.err" | grep -o "restart [0-9]* of 100" | awk '{print $2}' | sort -n | tail -1)
  check "restart: stopped in its back-off, log and status agree ($blogged, $brestarts)" \
    test -n "$brestarts" -a "${blogged:-0}" = "$brestarts"
  check "group restart: each member restarted twice" has "group-restart 0 1"
  check "group restart: stop ends every member" has "group-restart-stop 0 1"
  check "an empty group does not start (invalid argument, 'no members')" has "group-empty 1 1"
  check "registry: register" has "reg-register 0"
  check "registry: a taken name" has "reg-taken 6"
  check "registry: replace" has "reg-replace 0"
  check "registry: lookup" has "reg-lookup 0 kind 2 same 1"
  check "registry: small buffer gives the length" has "reg-small-buffer 12 len 6"
  check "registry: unregister" has "reg-unregister 0"
  check "registry: unregister twice" has "reg-unregister-again 5"
  check "registry: missing name" has "reg-missing 5"
  check "registry: waiting lookup times out" has "reg-wait-timeout 4"
  check "registry: bad names" has "reg-bad-name 1 1 1"
  check "registry: value too long" has "reg-too-long 1"
  check "registry: largest value" has "reg-largest 0"
  check "registry: another process waits for a name" has "child-lookup 0 kind 3 value registered-late"
  check "registry: cross-process lookup exits 0" has "reg-cross-process 0 exit 0"
  check "system: one node, 4 GPUs" has "system-nodes 0 1 0 id 0 gpus 4 host-set 1"
  check "system: no node 1" has "system-no-node-1 5"
  check "system: one policy per GPU" has "system-gpu-policies 0 4 1"
  check "system: GPU policies into larger elements, strided, extra bytes untouched" has "system-gpu-policies-wide 0 4 1"
  check "system: GPU policies into too small elements refused" has "system-gpu-policies-small 1 1"
  check "system: a GPU policy places and binds" has "placed-by-gpu-policy 0 exit 0"
  check "system: ... on GPU 3" has "placed-gpu=3"
  check "placement: HOST_NAME without a name" has "placement-name-missing 1"
  check "placement: unknown host, named" has "placement-unknown-host 5 1"
  check "placement: unknown host id" has "placement-unknown-id 5"
  check "placement: host id 0" has "placement-id-0 0 exit 0"
  check "policy wait mode reaches the process" has "wait-mode=spin"
  check "identity: the group started and joined" has "identity-group 0 0"
  check "identity: member 0 in role worker, 0/3" grep -qx "whoami member self 0 puid-env-match 1 role worker rank 0 0/3 exe-ok 1" <<<"$out"
  check "identity: member 1 in role worker, 1/3" grep -qx "whoami member self 0 puid-env-match 1 role worker rank 0 1/3 exe-ok 1" <<<"$out"
  check "identity: member 2 without a role, 2/3" grep -qx "whoami single self 0 puid-env-match 1 role - rank 0 2/3 exe-ok 1" <<<"$out"
  check "identity: a member's own child inherits neither role nor rank" grep -qx "whoami nested self 0 puid-env-match 1 role - rank 5 0/0 exe-ok 1" <<<"$out"
  check "identity: a single process in role loner, not in a group" grep -qx "whoami single self 0 puid-env-match 1 role loner rank 5 0/0 exe-ok 1" <<<"$out"
  check "identity: single process exit 0" has "identity-process 0 exit 0"
  check "identity: a role with a space is refused" has "identity-bad-role 1"
  check "runtime client: nothing left" nothing_left tl8$sfx
  # A group of 4100 members (two spawn and two join requests) under a soft limit of 256
  # descriptors: the daemon raises its own, and members get the 256 back.
  out=$(ulimit -Sn 256; timeout 300 "$dragon" --runtime-id tl9$sfx "$build/tests/integration/runtime-client" --group 4100 2>&1)
  check "big group: all 4100 members ran and exited 0" grep -qx "big-group 0 4100 of 4100" <<<"$out"
  check "big group: members keep the caller's descriptor limit" grep -qx "member-nofile 256" <<<"$out"
  check "big group: nothing left" nothing_left tl9$sfx
fi

# The process-group example (the seed's 1_dragon_process_group.py): one process per GPU of
# a fake 2-GPU node, then on this node as it is.
if [ -n "$topologies" ] && [ -x "$build/examples/process-group" ]; then
  out=$(timeout 60 "$dragon" --topology "$topologies/nvidia-2gpu-2cpu.xml" "$build/examples/process-group")
  check "example: one process per GPU, GPU 0" grep -q "GPU ID(s): 0, CPUs: 0-1" <<<"$out"
  check "example: one process per GPU, GPU 1" grep -q "GPU ID(s): 1, CPUs: 0-1" <<<"$out"
  check "example: all ran" grep -qx "2 processes ran, 0 failed" <<<"$out"
  out=$(timeout 60 "$dragon" "$build/examples/process-group"); rc=$?
  check "example on this node: exit 0" [ $rc -eq 0 ]
  # One NUMA domain here (as on this project's machines): one process, said so (item 9).
  lacks() { ! grep -q "$1" <<<"$out"; }
  check "example: one process is 'process', not '1 processes'" lacks "^Launching 1 processes\|^1 processes ran"
  # A topology larger than the job's grant (issue 12, bug 4): granted CPU 0 only, the fake
  # 4-GPU node's GPUs 2 and 3 sit on CPUs 4-7. The group starts none of its members (GPUs 0
  # and 1 would narrow to CPU 0), and the error names the CPUs and the node.
  out=$(timeout 60 taskset -c 0 "$dragon" --topology "$topologies/nvidia-4gpu.xml" "$build/examples/process-group" 2>"$work/big.err"); rc=$?
  check "topology larger than the grant: fails" [ $rc -ne 0 ]
  check "topology larger than the grant: no member ran" lacks "^Hello from"
  check "topology larger than the grant: names the CPUs and the node" \
    grep -q "member 2 .* cannot be placed, so no member was started: cannot bind to CPUs 4-7 .*: node 0 ('fake-nvidia') grants this job CPUs 0 only" "$work/big.err"
fi

# The first demo (issue 12, item 8): processes of the runtime share a pool and talk over
# queues found in the registry; nothing of it is left, also when it is interrupted midway.
if [ -x "$build/examples/pool-share" ]; then
  out=$(timeout 60 "$dragon" --runtime-id tld$sfx "$build/examples/pool-share"); rc=$?
  check "demo: exit 0" [ $rc -eq 0 ]
  check "demo: 4 workers in the role 'worker', each named with its rank" \
    [ "$(grep -c '^  worker [0-3] of 4 (puid [0-9]*, pid [0-9]*): [0-9]* jobs$' <<<"$out")" -eq 4 ]
  check "demo: the result is exact and every block freed" \
    grep -qx "sum of squares 1..20: 2870 (expected 2870); workers all exited; workers' blocks left in the pool: 0" <<<"$out"
  check "demo: nothing left" nothing_left tld$sfx
  start_bg "$work/demo.out" "$work/demo.err" --runtime-id tle$sfx "$build/examples/pool-share"
  wait_for_line "$work/demo.out" "the runtime started"
  kill -INT $launcher; wait $launcher
  check "demo interrupted midway: nothing left" nothing_left tle$sfx
fi

# A segment the program leaves behind is removed at teardown.
timeout 30 "$dragon" --runtime-id tl3$sfx sh -c ': > /dev/shm/dragon.$DRAGON_RUNTIME_ID.0.pool.leak'
check "teardown removes the runtime's segments" nothing_left tl3$sfx

# SIGINT to the launcher: passed on, then teardown (child of the program included).
start_bg "$work/int" /dev/null --runtime-id tl4$sfx sh -c 'sleep 300 & echo started; wait'
wait_for_line "$work/int" started
kill -INT $launcher
wait $launcher; rc=$?
check "SIGINT: launcher exits 130" [ $rc -eq 130 ]
check "SIGINT: nothing left" nothing_left tl4$sfx

# SIGKILL of the launcher: the daemon sees it go and tears down by itself; dragon-cleanup
# then finds nothing, and after killing the daemon too it removes everything.
start_bg "$work/k" /dev/null --runtime-id tl5$sfx sh -c 'echo started; exec sleep 300'
wait_for_line "$work/k" started
kill -KILL $launcher
wait $launcher 2>/dev/null
for _ in $(seq 300); do nothing_left tl5$sfx >/dev/null && break; sleep 0.01; done
check "launcher SIGKILLed: the daemon tears down" nothing_left tl5$sfx

start_bg "$work/k2" /dev/null --runtime-id tl6$sfx sh -c 'echo started; exec sleep 300'
wait_for_line "$work/k2" started
daemon=$(grep -lsa -- "--runtime-id.tl6$sfx" /proc/[0-9]*/cmdline | head -1 | cut -d/ -f3)
kill -KILL $launcher "$daemon" 2>/dev/null
wait $launcher 2>/dev/null
timeout 30 "$cleanup_tool" --runtime-id tl6$sfx >/dev/null; rc=$?
check "dragon-cleanup after SIGKILL of launcher and daemon: exit 0" [ $rc -eq 0 ]
check "dragon-cleanup leaves nothing" nothing_left tl6$sfx

# Another uid is refused by the daemon (root switches to nobody; the socket is opened up
# for the test so that only the credential check stands in the way).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
  # A runtime base of this test's own, opened up only here.
  xdg="$work/xdg"
  mkdir -p "$xdg"
  XDG_RUNTIME_DIR="$xdg" start_bg "$work/u" "$work/u.err" --runtime-id tl7$sfx sh -c 'echo started; exec sleep 300'
  wait_for_line "$work/u" started
  ubase="$xdg/dragon"
  chmod 0711 "$work" "$xdg" "$ubase" "$ubase/tl7$sfx"
  chmod 0666 "$ubase/tl7$sfx/node-0.sock"
  reply=$(timeout 10 setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.send(b"{\"op\":\"hello\",\"id\":1}")
    print("reply" if s.recv(4096) else "closed")
except (ConnectionResetError, BrokenPipeError):
    print("closed")' "$ubase/tl7$sfx/node-0.sock" 2>&1)
  kill -TERM $launcher
  wait $launcher
  check "other uid: connection closed, no reply" [ "$reply" = "closed" ]
  check "other uid: refusal logged" grep -q "refused connection from uid $(id -u nobody)" "$work/u.err"
else
  echo "skip other-uid test (needs root, setpriv and python3)"
fi

kill "${watchdogs[@]}" 2>/dev/null
echo "$fails failed"
[ $fails -eq 0 ]
