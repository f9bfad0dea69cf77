#!/bin/bash
# test_deb.sh — the Debian package (issue 16): builds it from a fresh
# distribution tree with `dpkg-buildpackage -us -uc -b` (DEB_BUILD_OPTIONS=
# nocheck: make check is what is running this), lists it (dpkg -c: the
# binaries, unit, sysusers entry, conffile, man pages, completion),
# extracts it (dpkg -x) and checks the installed example configuration
# with the extracted vtuned --check-config; runs lintian when installed
# (errors and warnings fail; overrides live in
# debian/vtuned.lintian-overrides, one comment each).
#
# The package build configures and compiles the tree once more (about a
# minute on two cores).  Skipped without dpkg-buildpackage or debhelper
# (tests/bootstrap.sh check installs them), and under make distcheck,
# whose read-only tree is the one the main make check already packaged.
. "$(dirname "$0")/lib.sh"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage is not installed (apt-get install dpkg-dev)"
command -v dh >/dev/null || skip "debhelper is not installed (apt-get install debhelper)"
[ -w "$top_srcdir" ] || skip "read-only source tree (make distcheck): the main make check runs this"
[ -f "$top_builddir/Makefile" ] || skip "no Makefile in $top_builddir"

ver=$(sed -n '1s/^vtuned (\([^)]*\)).*/\1/p' "$top_srcdir/debian/changelog")
arch=$(dpkg --print-architecture)
check "debian/changelog names a version ($ver)" test -n "$ver"
# The distribution tree: what make dist would ship, debian/ included.
make -s -C "$top_builddir" distdir distdir="$T/vtuned-$ver" > "$T/distdir.log" 2>&1 ||
    { cat "$T/distdir.log"; fail "make distdir"; finish; }
check "debian/ is in the distribution" test -x "$T/vtuned-$ver/debian/rules"
(cd "$T/vtuned-$ver" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" \
    dpkg-buildpackage -us -uc -b > "$T/build.log" 2>&1); rc=$?
[ $rc = 0 ] || tail -30 "$T/build.log"
deb="$T/vtuned_${ver}_$arch.deb"
check "dpkg-buildpackage -us -uc -b succeeds" test $rc = 0
check "it makes $deb" test -f "$deb"
[ -f "$deb" ] || finish

dpkg -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$T/contents"
for f in /usr/sbin/vtuned /usr/bin/vtunectl /lib/systemd/system/vtuned.service \
         /usr/lib/sysusers.d/vtuned.conf /etc/vtuned/vtuned.yaml \
         /usr/share/man/man8/vtuned.8.gz /usr/share/man/man1/vtunectl.1.gz \
         /usr/share/man/man5/vtuned.yaml.5.gz /usr/share/bash-completion/completions/vtunectl \
         /usr/share/doc/vtuned/copyright; do
    check "the package holds $f" grep -qx "$f" "$T/contents"
done
check "no file under /usr/local" sh -c "! grep -q '^/usr/local' '$T/contents'"

mkdir -p "$T/ctrl" && dpkg-deb -e "$deb" "$T/ctrl"
check "/etc/vtuned/vtuned.yaml is a conffile" grep -qx /etc/vtuned/vtuned.yaml "$T/ctrl/conffiles"
check "postinst creates the user (systemd-sysusers vtuned.conf)" grep -q "systemd-sysusers.*vtuned.conf" "$T/ctrl/postinst"
check "postinst enables and starts vtuned.service" grep -q "deb-systemd-invoke .*vtuned.service" "$T/ctrl/postinst"
check "the user is created before the service starts" \
    sh -c "[ \$(grep -n systemd-sysusers '$T/ctrl/postinst' | head -1 | cut -d: -f1) -lt \$(grep -n deb-systemd-invoke '$T/ctrl/postinst' | head -1 | cut -d: -f1) ]"
check "Depends names the sysusers provider" sh -c "dpkg-deb -f '$deb' Depends | grep -q systemd"

X=$T/root
dpkg -x "$deb" "$X"
check "the unit's ExecStart is /usr/sbin/vtuned -c /etc/vtuned/vtuned.yaml" \
    grep -qx "ExecStart=/usr/sbin/vtuned -c /etc/vtuned/vtuned.yaml" "$X/lib/systemd/system/vtuned.service"
"$X/usr/sbin/vtuned" --help > "$T/help" 2>&1
check "the packaged vtuned's default config is /etc/vtuned/vtuned.yaml" \
    grep -q "(default /etc/vtuned/vtuned.yaml)" "$T/help"
"$X/usr/bin/vtunectl" --help > "$T/chelp" 2>&1
check "the packaged vtunectl's default socket is /run/vtuned/vtuned.sock" \
    grep -q "else /run/vtuned/vtuned.sock" "$T/chelp"
check "the example's state_dir is /var/lib/vtuned" grep -qx "state_dir: /var/lib/vtuned" "$X/etc/vtuned/vtuned.yaml"
check "the example's socket is /run/vtuned/vtuned.sock" grep -qx "socket: /run/vtuned/vtuned.sock" "$X/etc/vtuned/vtuned.yaml"
"$X/usr/sbin/vtuned" --check-config -c "$X/etc/vtuned/vtuned.yaml" > "$T/cc" 2>&1; rc=$?
check "the installed example loads: $(head -c 200 "$T/cc")" test $rc = 0

if command -v lintian >/dev/null; then
    lintian --fail-on error,warning "$T/vtuned_${ver}_${arch}.changes" > "$T/lintian" 2>&1; rc=$?
    sed 's/^/# lintian: /' "$T/lintian"
    check "lintian reports no error or warning" test $rc = 0
else
    echo "# lintian is not installed: not run"
fi
finish
