# Sourced by the integration scripts after their run: rc becomes 1 if a process or a /dev/shm
# segment of runtime $rt is left (the run's own status otherwise stays).
if grep -lsa -- "--runtime-id.$rt" /proc/[0-9]*/cmdline >/dev/null 2>&1 ||
  grep -lsa "DRAGON_RUNTIME_ID=$rt" /proc/[0-9]*/environ >/dev/null 2>&1; then
  echo "FAIL: a process of runtime $rt is left"; rc=1
fi
if ls /dev/shm/dragon."$rt".* >/dev/null 2>&1; then
  echo "FAIL: left in /dev/shm: $(ls /dev/shm | grep "^dragon\.$rt\.")"; rc=1
fi
