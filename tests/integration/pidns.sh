# Sourced by the integration scripts that kill and signal, first thing: the script runs
# again in a pid namespace of its own (with its own /proc), so that a bug in a kill path can
# never reach anything else on the machine; without root (unshare -p) it is skipped (77).
# Sets $sfx, a suffix for runtime ids unique to this run ($$ is 1 in every pid namespace).
if [ -z "${DRAGON_TEST_PIDNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ] || ! unshare -pf --mount-proc true 2>/dev/null; then
    echo "skip: needs root and unshare -pf (a pid namespace of its own)"; exit 77
  fi
  exec unshare -pf --mount-proc --kill-child env DRAGON_TEST_PIDNS=1 bash "$0" "$@"
fi
sfx=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
