# Test hosts on one machine, as a cluster has them (issue 16). Source this file, then:
#
#   mn_up N        make hosts h0 .. h(N-1): each its own network, UTS, mount and PID
#                  namespace (its own addresses, host name, /dev/shm, /tmp and process
#                  table), all on one bridge, each running an sshd that takes a generated key.
#                  Directories in MN_SHARE (space-separated; a build tree, say) stay visible
#                  at their paths on every host even when they are under /tmp, as a shared
#                  file system would serve them.
#   mn_run I CMD…  run CMD on host I (nsenter into all its namespaces)
#   mn_ssh I J CMD run CMD on host J over ssh from host I, the way a launcher would
#   mn_down        stop everything mn_up made (also on failure; bounded; safe to repeat)
#
# The subnet is 198.18.77.0/24 (RFC 2544's benchmarking range, never routed). Before any
# host exists an `unreachable` route for it goes into the machine's own routing table (it is
# removed last), and the machine itself has no address on the test network: the bridge lives
# in a namespace of its own. So if a bridge or veth vanishes mid-test, no packet addressed to
# a test host can leave through the real interface, and the machine holds no connection to a
# host that teardown would have to abort first. Needs root, iproute2, util-linux and
# openssh-server; mn_up returns 77 (skip) with the reason when namespaces cannot be made.

MN_SUBNET=${MN_SUBNET:-198.18.77}
MN_PREFIX=${MN_PREFIX:-dgmn$$}
MN_DIR=""
MN_HOLDERS=()
MN_COUNT=0
MN_ROUTE=0

mn_addr() { echo "$MN_SUBNET.$((10 + $1))"; }
mn_name() { echo "h$1"; }

mn_skip() {
  echo "multinode: skipped: $*" >&2
  return 77
}

mn_run() {
  local i=$1
  shift
  nsenter -t "${MN_HOLDERS[$i]}" -n -u -m -p -i -- "$@"
}

mn_ssh() {
  local from=$1 to=$2
  shift 2
  mn_run "$from" ssh -F "$MN_DIR/ssh_config" "$(mn_name "$to")" "$@"
}

mn_up() {
  local n=$1
  [ "$(id -u)" -eq 0 ] || { mn_skip "needs root"; return; }
  for tool in ip nsenter unshare ssh ssh-keygen /usr/sbin/sshd; do
    command -v "$tool" >/dev/null || { mn_skip "$tool is not installed"; return; }
  done
  if ! unshare -n -u -m -p -f true 2>/dev/null; then
    mn_skip "cannot make network/UTS/mount/PID namespaces here"
    return
  fi
  # Not under /tmp: each host mounts its own /tmp over it. The hosts share the rest of the
  # file system, as cluster nodes share an installation.
  MN_DIR=$(mktemp -d "/var/tmp/$MN_PREFIX.XXXXXX")
  # The guard first, then the switch, then the hosts.
  ip route add unreachable "$MN_SUBNET.0/24" metric 4000 || { mn_down; return 1; }
  MN_ROUTE=1
  ip netns add "$MN_PREFIX-sw" || { mn_down; return 1; }
  ip -n "$MN_PREFIX-sw" link add br0 type bridge || { mn_down; return 1; }
  ip -n "$MN_PREFIX-sw" link set br0 up
  ssh-keygen -q -t ed25519 -N '' -f "$MN_DIR/id" || { mn_down; return 1; }
  ssh-keygen -q -t ed25519 -N '' -f "$MN_DIR/host_key" || { mn_down; return 1; }
  cp "$MN_DIR/id.pub" "$MN_DIR/authorized_keys"
  {
    echo "127.0.0.1 localhost"
    for ((i = 0; i < n; i++)); do echo "$(mn_addr "$i") $(mn_name "$i")"; done
  } >"$MN_DIR/hosts"
  cat >"$MN_DIR/ssh_config" <<CFG
Host *
  IdentityFile $MN_DIR/id
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
CFG
  for ((i = 0; i < n; i++)); do
    mn_make_host "$i" || { mn_down; return 1; }
    MN_COUNT=$((i + 1))
  done
  # Every host answers ssh from every other before anyone uses them.
  for ((i = 0; i < n; i++)); do
    mn_wait_ssh "$(( (i + 1) % n ))" "$i" || { echo "multinode: h$i: sshd does not answer" >&2; mn_down; return 1; }
  done
}

mn_make_host() {
  local i=$1 name addr ready
  name=$(mn_name "$i")
  addr=$(mn_addr "$i")
  ready="$MN_DIR/$name.ready"
  # The holder is pid 1 of the host's PID namespace; its private /dev/shm, /tmp and /run and
  # its /etc/hosts exist only in the host's mount namespace. It waits until told to go away
  # (mn_down kills it, which ends every process of the host with it).
  # Shared directories under /tmp are bound aside first, then back at their paths over the
  # host's own /tmp.
  local keep="" back="" k=0 d
  for d in ${MN_SHARE:-}; do
    case "$d" in
    /tmp/*)
      mkdir -p "$MN_DIR/share$k"
      keep="$keep mount --bind '$d' '$MN_DIR/share$k' &&"
      back="$back mkdir -p '$d' && mount --bind '$MN_DIR/share$k' '$d' &&"
      k=$((k + 1))
      ;;
    esac
  done
  unshare -n -u -m -p -i -f --mount-proc --propagation private -- /bin/sh -c "
    hostname $name && $keep
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm &&
    mount -t tmpfs -o mode=1777 tmpfs /tmp && $back
    mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/sshd &&
    mount --bind $MN_DIR/hosts /etc/hosts &&
    ip link set lo up && touch $ready && exec sleep 100000" </dev/null 2>>"$MN_DIR/$name.log" &
  local unshare_pid=$! holder="" t
  for ((t = 0; t < 500; t++)); do
    holder=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | awk '{print $1}')
    [ -n "$holder" ] && [ -e "$ready" ] && break
    sleep 0.01
  done
  [ -n "$holder" ] && [ -e "$ready" ] || { echo "multinode: $name did not start" >&2; kill "$unshare_pid" 2>/dev/null; return 1; }
  MN_HOLDERS[$i]=$holder
  ip link add "$MN_PREFIX-v$i" type veth peer name "$MN_PREFIX-p$i" || return 1
  ip link set "$MN_PREFIX-p$i" netns "$MN_PREFIX-sw" || return 1
  ip -n "$MN_PREFIX-sw" link set "$MN_PREFIX-p$i" master br0 up || return 1
  ip link set "$MN_PREFIX-v$i" netns "/proc/$holder/ns/net" || return 1
  mn_run "$i" ip link set "$MN_PREFIX-v$i" name eth0 || return 1
  mn_run "$i" ip addr add "$addr/24" dev eth0 || return 1
  mn_run "$i" ip link set eth0 up || return 1
  cat >"$MN_DIR/$name.sshd_config" <<CFG
ListenAddress $addr
HostKey $MN_DIR/host_key
AuthorizedKeysFile $MN_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile /run/sshd.pid
AcceptEnv DRAGON_*
CFG
  mn_run "$i" /usr/sbin/sshd -f "$MN_DIR/$name.sshd_config" || return 1
}

mn_wait_ssh() {
  local from=$1 to=$2 t
  for ((t = 0; t < 100; t++)); do
    mn_ssh "$from" "$to" true 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

mn_down() {
  local i pid t
  for i in "${!MN_HOLDERS[@]}"; do
    pid=${MN_HOLDERS[$i]}
    # pid 1 of the host's namespace: killing it ends every process of the host.
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  done
  for i in "${!MN_HOLDERS[@]}"; do
    pid=${MN_HOLDERS[$i]} t=0
    while [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ $t -lt 500 ]; do sleep 0.01; t=$((t + 1)); done
  done
  MN_HOLDERS=()
  wait 2>/dev/null
  ip netns del "$MN_PREFIX-sw" 2>/dev/null
  for i in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep "^$MN_PREFIX-" | cut -d@ -f1); do
    ip link del "$i" 2>/dev/null
  done
  if [ "$MN_ROUTE" = 1 ]; then
    ip route del unreachable "$MN_SUBNET.0/24" metric 4000 2>/dev/null
    MN_ROUTE=0
  fi
  [ -n "$MN_DIR" ] && rm -rf "$MN_DIR"
  MN_DIR=""
  MN_COUNT=0
}
