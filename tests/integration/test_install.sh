#!/bin/bash
# test_install.sh — ./configure's directories reach the installed files
# (issue 16): a build configured with --prefix, --sysconfdir,
# --localstatedir and --runstatedir under $T, installed with DESTDIR, must
# show those paths in vtuned --help, read SYSCONFDIR/vtuned/vtuned.yaml
# when no -c is given, default vtunectl's socket to RUNSTATEDIR, name them
# in the unit, and install the example configuration (which loads as
# installed) without overwriting an edited one.
#
# It configures and builds the tree once more (-O0, about a minute on two
# cores), so it is skipped under make distcheck, whose read-only source
# tree is the same as the one the main make check already tested.
. "$(dirname "$0")/lib.sh"
[ -w "$top_srcdir" ] || skip "read-only source tree (make distcheck): the main make check runs this"
[ -x "$top_srcdir/configure" ] || skip "no configure script in $top_srcdir (run autoreconf -fi)"

P=$T/x
mkdir -p "$T/b"
(cd "$T/b" && "$top_srcdir/configure" -q CFLAGS="-O0 -g0" --prefix="$P" --sysconfdir="$P/etc" \
    --localstatedir="$P/var" --runstatedir="$P/run" > "$T/configure.log" 2>&1 &&
    make -s -j"${JOBS:-2}" > "$T/make.log" 2>&1 &&
    make -s install DESTDIR="$T/d" > "$T/install.log" 2>&1) ||
    { tail -20 "$T"/*.log; fail "configure, make and make install"; finish; }
R=$T/d$P
check "vtuned is installed in sbindir" test -x "$R/sbin/vtuned"
check "vtunectl is installed in bindir" test -x "$R/bin/vtunectl"
check "the example config is installed in SYSCONFDIR/vtuned" test -f "$R/etc/vtuned/vtuned.yaml"
check "... mode 0640" test "$(stat -c %a "$R/etc/vtuned/vtuned.yaml")" = 640
check "... with state_dir under LOCALSTATEDIR" grep -qx "state_dir: $P/var/lib/vtuned" "$R/etc/vtuned/vtuned.yaml"
check "... with the socket under RUNSTATEDIR" grep -qx "socket: $P/run/vtuned/vtuned.sock" "$R/etc/vtuned/vtuned.yaml"
check "... and key file examples under SYSCONFDIR" grep -q "api_key_file: $P/etc/vtuned/openai.key" "$R/etc/vtuned/vtuned.yaml"
check "... and no /etc/vtuned, /var/lib/vtuned or /run/vtuned left" \
    sh -c "! grep -E '(^|[^a-z])/(etc|var/lib|run)/vtuned' '$R/etc/vtuned/vtuned.yaml'"

"$R/sbin/vtuned" --help > "$T/help" 2>&1
check "vtuned --help shows SYSCONFDIR/vtuned/vtuned.yaml as the default" \
    grep -q "(default $P/etc/vtuned/vtuned.yaml)" "$T/help"
"$R/bin/vtunectl" --help > "$T/chelp" 2>&1
check "vtunectl --help shows RUNSTATEDIR/vtuned/vtuned.sock as the default socket" \
    grep -q "$P/run/vtuned/vtuned.sock" "$T/chelp"

# Without -c the daemon reads $P/etc/vtuned/vtuned.yaml: not installed
# there yet (DESTDIR), so the error names that path; once the tree is in
# place it loads.
"$R/sbin/vtuned" --check-config > "$T/cc1" 2>&1; rc=$?
check "vtuned --check-config without -c reads SYSCONFDIR (exit 1, names $P/etc/vtuned/vtuned.yaml)" \
    sh -c "[ $rc = 1 ] && grep -q '^$P/etc/vtuned/vtuned.yaml: cannot open' '$T/cc1'"
mkdir -p "$P" && cp -a "$R/." "$P/"
"$R/sbin/vtuned" --check-config > "$T/cc2" 2>&1; rc=$?
check "the installed example loads as installed: $(head -c 200 "$T/cc2")" \
    sh -c "[ $rc = 0 ] && grep -q '^$P/etc/vtuned/vtuned.yaml: configuration OK (0 providers)' '$T/cc2'"
# With no VTUNE_SOCKET, vtunectl tries RUNSTATEDIR's socket (nothing there).
env -u VTUNE_SOCKET "$R/bin/vtunectl" status > "$T/st" 2>&1
check "vtunectl's default socket is RUNSTATEDIR/vtuned/vtuned.sock" grep -q "$P/run/vtuned/vtuned.sock" "$T/st"

unit=$(find "$T/d" -name vtuned.service)
check "the unit is installed" test -n "$unit"
check "the unit's ExecStart names SBINDIR/vtuned and SYSCONFDIR's config" \
    grep -qx "ExecStart=$P/sbin/vtuned -c $P/etc/vtuned/vtuned.yaml" "$unit"
check "the sysusers entry is installed" test -f "$R/lib/sysusers.d/vtuned.conf"
check "the bash completion is installed" test -f "$R/share/bash-completion/completions/vtunectl"
check "the man pages are installed" test -f "$R/share/man/man5/vtuned.yaml.5"

# An edited configuration survives make install; the new example goes beside it.
echo "# edited" >> "$R/etc/vtuned/vtuned.yaml"
(cd "$T/b" && make -s install DESTDIR="$T/d" > "$T/install2.log" 2>&1)
check "make install keeps an edited vtuned.yaml" grep -q "^# edited" "$R/etc/vtuned/vtuned.yaml"
check "... and installs the new example as vtuned.yaml.new" test -f "$R/etc/vtuned/vtuned.yaml.new"
(cd "$T/b" && make -s uninstall DESTDIR="$T/d" > "$T/uninstall.log" 2>&1)
check "make uninstall keeps the edited vtuned.yaml" test -f "$R/etc/vtuned/vtuned.yaml"
check "... and removes the unchanged vtuned.yaml.new" test ! -e "$R/etc/vtuned/vtuned.yaml.new"
finish
