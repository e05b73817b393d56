#!/bin/sh
# Run by `meson install` (meson.add_install_script): make the installed libdragon-c findable
# at run time, or say how. Debian 12's meson does not run ldconfig itself, so without this a
# program built with `pkg-config --libs dragon-c` fails to start ("cannot open shared object
# file") until someone runs ldconfig. Installs under DESTDIR (packaging) are left alone: a
# package's own trigger runs ldconfig where the files finally land.
# Usage: post-install.sh LIBDIR (absolute: prefix/libdir)
libdir=$1
[ -z "${DESTDIR:-}" ] || exit 0
# Debian 12's meson (1.0) keeps an install script's output to itself unless it fails: write to
# meson's own stdout instead, where the user sees it.
if [ -w "/proc/$PPID/fd/1" ]; then exec >"/proc/$PPID/fd/1"; fi
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
if [ "$(id -u)" -eq 0 ] && [ -x "$ldconfig" ]; then
  "$ldconfig" || echo "libdragon: ldconfig failed"
fi
if [ -x "$ldconfig" ] && "$ldconfig" -p | grep -q " => $libdir/libdragon-c\.so\."; then
  echo "libdragon: $libdir is in the dynamic linker's cache; programs find libdragon-c"
elif [ "$(id -u)" -ne 0 ] && [ -x "$ldconfig" ] && "$ldconfig" -v -N 2>/dev/null | grep -q "^$libdir:"; then
  echo "libdragon: the dynamic linker searches $libdir, but its cache is older than this install:"
  echo "libdragon: run 'sudo ldconfig', or run programs with LD_LIBRARY_PATH=$libdir"
else
  echo "libdragon: the dynamic linker does not search $libdir: run programs with"
  echo "libdragon: LD_LIBRARY_PATH=$libdir, or link them with -Wl,-rpath,$libdir"
fi
exit 0
