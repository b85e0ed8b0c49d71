#!/usr/bin/env bash
# test_eval_mta.sh BINDIR - the labelled mail of tests/eval (its test part:
# never tuned on) sent through a real private Postfix and helpgate-milter,
# as the clients' own MTA would hand it over.  The urgency, category and
# machine flag in the delivered headers must be what `make eval` scored for
# the same file (so the figures of make eval are the figures a support
# desk gets through Postfix), and the figures are printed from the
# headers.  Every message sent must arrive.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
[ -x "$bindir/helpgate-milter" ] || { echo "no $bindir/helpgate-milter"; echo "0 passed, 1 failed"; exit 1; }
ev="$bindir/../tests/eval-classify"
[ -x "$ev" ] || ev="$repo/build/rel/tests/eval-classify"
[ -x "$ev" ] || { echo "no eval-classify (make unit-bins)"; echo "0 passed, 1 failed"; exit 1; }

# t_check A OP B DESC: a numeric test ([ A OP B ]) as one assertion.
t_check() { if [ "$1" "$2" "$3" ]; then t_ok "$4"; else t_fail "$4" "got $1, wanted $2 $3"; fi; }

ms_init || exit 1
conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
Database $MS_T/hg.db
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
CONF

ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
ms_start_postfix "unix:$MS_T/hg.sock" || exit 1

"$ev" "$repo/conf/keywords" --list --part test "$repo"/tests/eval/corpus-* >"$MS_T/expected.tsv" ||
	{ t_fail "eval-classify --list"; t_done; exit 1; }
total=$(grep -c . "$MS_T/expected.tsv")
t_check "$total" -ge 200 "the test part has $total messages (at least 200)"

# Each message as its writer made it, from its own envelope sender: a
# bounce from the null sender, everyone else from the From address.
sent=0
declare -A want_of_id
while IFS=$'\t' read -r path urg cat machine; do
	f="$repo/${path#"$repo"/}"
	[ -f "$f" ] || f="$path"
	id=$(ms_header "$f" Message-ID) || { t_fail "$(basename "$f") has a Message-ID"; continue; }
	from='client@client.test'
	if ms_header "$f" Return-Path | grep -q '^<>$'; then from='<>'; fi
	want_of_id["$id"]="$urg $cat $machine $(basename "$f")"
	if ms_send --data "$f" --from "$from"; then sent=$((sent + 1)); else t_fail "swaks accepted $(basename "$f")"; fi
done <"$MS_T/expected.tsv"
t_check "$sent" -eq "$total" "all $total sent"
ms_wait_delivered "$sent" 120 || t_fail "all $sent delivered (got $(ms_count_delivered))"

same=0 differ=0 urg_ok=0 cat_ok=0 cat_n=0 p1_exp=0 p1_got=0 p1_hit=0
declare -A label_of
while IFS=$'\t' read -r file lang urg cat machine _; do
	label_of["$file"]="$urg $cat $machine"
done < <(cat "$repo"/tests/eval/corpus-*/labels.tsv)
while IFS= read -r f; do
	id=$(ms_header "$f" Message-ID) || continue
	[ -n "${want_of_id[$id]+x}" ] || continue
	read -r wu wc wm name <<<"${want_of_id[$id]}"
	gu=$(ms_header "$f" X-Helpgate-Urgency) || gu=none
	gc=$(ms_header "$f" X-Helpgate-Category) || gc=none
	if ms_header "$f" X-Helpgate-Auto >/dev/null; then gm=yes; else gm=no; fi
	if [ "$gu $gc $gm" = "$wu $wc $wm" ]; then
		same=$((same + 1))
	else
		differ=$((differ + 1))
		ms_log "$name: through Postfix $gu $gc machine=$gm, make eval $wu $wc machine=$wm"
	fi
	read -r lu lc lm <<<"${label_of[$name]:-x x x}"
	[ "$gu" = "$lu" ] && urg_ok=$((urg_ok + 1))
	if [ "$lm" = no ]; then
		cat_n=$((cat_n + 1))
		[ "$gc" = "$lc" ] && cat_ok=$((cat_ok + 1))
	fi
	[ "$lu" = P1 ] && p1_exp=$((p1_exp + 1))
	[ "$gu" = P1 ] && p1_got=$((p1_got + 1))
	[ "$lu" = P1 ] && [ "$gu" = P1 ] && p1_hit=$((p1_hit + 1))
done < <(ms_list_delivered)
t_check "$((same + differ))" -eq "$total" "every message of the test part found by its Message-ID ($((same + differ)) of $total)"
t_check "$differ" -eq 0 "the headers Postfix delivered agree with make eval on every message ($same agree, $differ differ)"
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }'; }
ms_log "through Postfix, the test part: urgency right $urg_ok/$total ($(pct $urg_ok $total)%)," \
	"category right $cat_ok/$cat_n ($(pct $cat_ok $cat_n)%), P1 recall $p1_hit/$p1_exp ($(pct $p1_hit $p1_exp)%)," \
	"P1 precision $p1_hit/$p1_got ($(pct $p1_hit $p1_got)%)"
t_done
