#!/bin/bash
# Test hosts (tests/multinode/hosts.sh): three hosts come up, reach each other over ssh by
# name, have their own host names, /dev/shm, /tmp and process tables, cannot be reached from
# the machine itself, and leave nothing behind (route, namespaces, links, processes).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/pidns.sh"
MN_PREFIX="dgmn${sfx:0:6}"
# A directory under /tmp that every host must still see (a build tree in a CI clone).
shared=$(mktemp -d /tmp/dgmn-share.XXXXXX)
echo here >"$shared/mark"
other=$(mktemp /tmp/dgmn-other.XXXXXX) # and a file that no host must see
MN_SHARE="$shared"
. "$here/hosts.sh"

failures=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

trap 'mn_down; rm -rf "$shared" "$other"' EXIT
trap 'exit 143' TERM INT # so that the EXIT trap tears the hosts down
mn_up 3
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "FAIL: mn_up"; exit 1; }

for j in 0 1 2; do
  from=$(( (j + 1) % 3 ))
  check "h$from reaches h$j over ssh, which says its own name" \
    test "$(mn_ssh "$from" "$j" hostname)" = "h$j"
done
mn_run 0 sh -c 'echo h0 >/dev/shm/dgmn-mark && echo h0 >/tmp/dgmn-mark'
check "/dev/shm is per host" mn_run 1 test ! -e /dev/shm/dgmn-mark
check "/tmp is per host" mn_run 2 test ! -e /tmp/dgmn-mark
check "the machine's /dev/shm does not see it" test ! -e /dev/shm/dgmn-mark
check "the host sees its own" mn_run 0 test -e /dev/shm/dgmn-mark
check "a shared directory under /tmp is seen by every host" \
  test "$(mn_run 0 cat "$shared/mark")$(mn_run 2 cat "$shared/mark")" = herehere
check "... but nothing else of the machine's /tmp" mn_run 1 test ! -e "$other"
mn_run 1 sh -c 'sleep 300 >/dev/null 2>&1 &'
check "a process of h1 is in h1's process table" test "$(mn_run 1 pgrep -c -f 'sleep 300')" -ge 1
check "and not in h0's" test -z "$(mn_run 0 pgrep -f 'sleep 300')"
check "pid 1 of each host is its holder" test "$(mn_run 2 cat /proc/1/comm)" = sleep
check "every host runs its sshd" test "$(pgrep -c -f "[s]shd -f $MN_DIR/")" -eq 3
check "the unreachable route guards the subnet" \
  sh -c "ip route show type unreachable | grep -q '^unreachable $MN_SUBNET.0/24'"
check "the machine itself cannot reach a host" \
  sh -c "! timeout 3 bash -c '</dev/tcp/$(mn_addr 0)/22' 2>/dev/null"

holders=("${MN_HOLDERS[@]}")
dir=$MN_DIR
mn_down
rm -rf "$shared" "$other"
trap - EXIT
for pid in "${holders[@]}"; do
  check "host holder $pid is gone" test ! -e "/proc/$pid"
done
check "no namespace left" sh -c "! ip netns list | grep -q '^$MN_PREFIX'"
check "no link left" sh -c "! ip -o link show | grep -q '$MN_PREFIX-'"
check "the route went last" sh -c "! ip route show type unreachable | grep -q '$MN_SUBNET.0/24'"
check "no sshd left" sh -c "! pgrep -f '[s]shd -f $dir/' >/dev/null"
check "its directory went too" test ! -e "$dir"
[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "multinode hosts: all checks passed"
