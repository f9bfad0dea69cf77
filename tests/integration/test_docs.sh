#!/bin/bash
# The documentation against the tool: man/vtunectl.1 and README.md name every
# command and flag of vtunectl's command table and none it lacks, vtuned(8)
# names every method and error code of ctl/protocol.h, vtunectl(1) JSON
# OUTPUT has every command and every key of its schemas (ctl/schema/, one
# per command), and an example
# socket_group is the group systemd-sysusers creates (check_docs.py says
# how).  The table is read from the built vtunectl ('vtunectl __commands'),
# so a flag added to the table without its documentation fails here.
. "$(dirname "$0")/lib.sh"

"$VTUNECTL" __commands > "$T/table"; rc=$?
check "vtunectl __commands dumps the table" test "$rc" = 0 -a "$(wc -l < "$T/table")" -gt 20
check "the dump has the global options first" grep -q '^-	-	--socket|-s ' "$T/table"

python3 "$(dirname "$0")/check_docs.py" "$VTUNECTL" "$top_srcdir" > "$T/docs"; rc=$?
sed 's/^/# /' "$T/docs"
check "the documentation matches vtunectl and ctl/protocol.h" test "$rc" = 0

# The checker must be able to fail: a copy of the docs with one flag
# dropped from the man page's synopsis, and one invented in README.
mkdir -p "$T/src/man" "$T/src/ctl" "$T/src/systemd" "$T/src/conf"
cp "$top_srcdir/README.md" "$T/src/"
cp "$top_srcdir"/man/*.[158] "$T/src/man/"
cp "$top_srcdir/ctl/protocol.h" "$top_srcdir/ctl/local.mk" "$T/src/ctl/"
cp -r "$top_srcdir/ctl/schema" "$T/src/ctl/"
cp "$top_srcdir/systemd/vtuned.sysusers" "$T/src/systemd/"
cp "$top_srcdir/conf/vtuned.yaml" "$T/src/conf/"
python3 "$(dirname "$0")/check_docs.py" "$VTUNECTL" "$T/src" > /dev/null
check "the unchanged copy passes" test $? = 0
sed -i '/^\.RB \[ \\-\\-trigger\\-log10p$/,+1d' "$T/src/man/vtunectl.1"
sed -i 's/^  verify J \[--trials N\]/  verify J [--rounds N] [--trials N]/' "$T/src/README.md"
# JSON OUTPUT: a key dropped from the man page, a command's schema removed.
sed -i '/^\.B last_verdict$/d' "$T/src/man/vtunectl.1"
rm "$T/src/ctl/schema/schedule-rm.json"
python3 "$(dirname "$0")/check_docs.py" "$VTUNECTL" "$T/src" > "$T/bad"; rc=$?
check "a schema key missing from JSON OUTPUT fails" grep -q "JSON OUTPUT does not name the key last_verdict" "$T/bad"
check "a command without a schema fails" grep -q "no schedule-rm.json (the schema of 'schedule rm')" "$T/bad"
check "a flag missing from the man page fails" grep -q "SYNOPSIS: 'backdoor create' lacks --trigger-log10p" "$T/bad"
check "a flag the tool lacks, named in README, fails" grep -q "'verify' names --rounds, which vtunectl does not have" "$T/bad"
check "and the checker exits 1" test "$rc" = 1

finish
