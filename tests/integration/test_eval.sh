#!/usr/bin/env bash
# test_eval.sh BINDIR - the classifier's figures on the test part of
# tests/eval/ (labelled mail written from the rubric alone, never tuned on)
# must not fall below tests/eval/floor.tsv, the figures reached when it was
# last raised.  make eval prints the whole picture; this only guards it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
ev="$bindir/../tests/eval-classify"
[ -x "$ev" ] || ev="$repo/build/rel/tests/eval-classify"
[ -x "$ev" ] || { echo "no eval-classify (make unit-bins)"; echo "0 passed, 1 failed"; exit 1; }
corpora=("$repo"/tests/eval/corpus-*)
[ -d "${corpora[0]}" ] || { echo "no corpus under tests/eval"; echo "0 passed, 1 failed"; exit 1; }

json=$("$ev" "$repo/conf/keywords" --json "${corpora[@]}") || { t_fail "eval-classify runs"; t_done; exit 1; }
echo "# $json"
while IFS=$'\t' read -r part metric floor; do
	case "$part" in '' | '#'*) continue ;; esac
	got=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$part" "$metric")
	if awk -v g="$got" -v f="$floor" 'BEGIN { exit !(g + 0.0001 >= f) }'; then
		t_ok "$part $metric $got% (floor $floor%)"
	else
		t_fail "$part $metric fell to $got% (floor $floor%)"
	fi
done <"$repo/tests/eval/floor.tsv"
t_done
