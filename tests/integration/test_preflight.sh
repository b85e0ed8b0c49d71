#!/usr/bin/env bash
# test_preflight.sh - tests/lib/preflight.sh names the missing package when
# a tool lacks what the tests need: a swaks without TLS (Net::SSLeay
# missing, as on a fresh Debian where only swaks itself was installed) and
# a missing command.  The tools are hidden behind stand-ins on PATH; the
# machine's packages are not touched.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"
T=$(mktemp -d /tmp/helpgate-preflight.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

out=$(bash "$repo/tests/lib/preflight.sh" 2>&1)
rc=$?
t_is "$rc" 0 "preflight passes on this machine (make deps ran)"
t_like "$(printf '%s\n' "$out" | tail -n 1)" '^[0-9]+ passed, 0 failed$' "it ends with the summary line"

# A swaks that says what a swaks without libnet-ssleay-perl says.
mkdir -p "$T/bin"
cat >"$T/bin/swaks" <<'SH'
#!/bin/sh
/usr/bin/swaks "$@" 2>&1 | sed 's/^=== TLS supported/*** TLS not available: requires Net::SSLeay/'
SH
chmod 755 "$T/bin/swaks"
out=$(PATH="$T/bin:$PATH" bash "$repo/tests/lib/preflight.sh" 2>&1)
rc=$?
t_is "$rc" 1 "swaks without TLS: preflight fails"
t_like "$out" 'missing: swaks: TLS .*libnet-ssleay-perl' "... and names libnet-ssleay-perl"
t_like "$(printf '%s\n' "$out" | tail -n 1)" '^0 passed, [1-9][0-9]* failed$' "... with a failing summary line"

# A command that is not there at all: PATH without faketime.
mkdir -p "$T/nofake"
for d in $(printf '%s' "$PATH" | tr ':' ' '); do
	for f in "$d"/*; do
		b=$(basename "$f")
		[ "$b" = faketime ] && continue
		[ -e "$T/nofake/$b" ] || ln -s "$f" "$T/nofake/$b" 2>/dev/null
	done
done
out=$(PATH="$T/nofake" bash "$repo/tests/lib/preflight.sh" 2>&1)
rc=$?
t_is "$rc" 1 "faketime missing: preflight fails"
t_like "$out" 'missing: the command faketime \(install the Debian package faketime' "... and names the package"

# tests/run.sh stops before any suite when preflight fails.
out=$(PATH="$T/bin:$PATH" TEST_FILTER=no-such-suite bash "$repo/tests/run.sh" "$T" 2>&1)
t_is "$?" 1 "tests/run.sh exits 1 at a failed preflight"
t_like "$out" 'preflight failed: nothing was run' "tests/run.sh stops at a failed preflight"
t_done
