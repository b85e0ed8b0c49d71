# helpgate-by-tier.sieve - files support mail in a staff mailbox by the
# customer's tier; urgency shows as flags.  A variant of
# helpgate-staff.sieve for teams that work per tier (an enterprise desk, a
# trial desk); use one of the two, not both.
#
# For Dovecot Pigeonhole (RFC 5228 with fileinto, imap4flags, mailbox,
# variables, regex).  Installation: see conf/sieve/README.md.
#
# Folder layout (created on first use; "Support" and "/" are set below):
#
#   Support/Enterprise, Support/Premium, Support/Standard, Support/Trial,
#   Support/Unknown   one per tier in X-Helpgate-Tier, first letter upper
#                     case; a tier of your own gets its own folder too;
#                     "+watch" (incident watch) files with the tier
#   Support/Auto      machine-generated mail (X-Helpgate-Auto) and copies
#                     of helpgate's acknowledgements; never flagged
#   Support/Notices   helpgate's notices to staff (X-Helpgate-Notice);
#                     P1/P2 ones flagged
#   INBOX             "X-Helpgate-Status: degraded" (no case, no
#                     acknowledgement): \Flagged, keyword Helpgate-Degraded
#
# Flags in every folder: P1 \Flagged $Important $label1; P2 \Flagged
# $Important; P3 and P4 none.  Mail without helpgate's headers is not
# touched; every rule that files a message ends with "stop".

require ["fileinto", "imap4flags", "mailbox", "variables", "regex"];

set "top" "Support";
set "sep" "/";

# Flags by urgency, used by every rule below (a variable, so each fileinto
# can use :flags "${flags}" and nothing leaks into a later keep).
set "flags" "";
if header :is "X-Helpgate-Urgency" "P1" {
	set "flags" "\\Flagged $Important $label1";
} elsif header :is "X-Helpgate-Urgency" "P2" {
	set "flags" "\\Flagged $Important";
}

# 1. helpgate-worker's notices to staff.
if allof (exists "X-Helpgate-Notice", exists "X-Helpgate-Seal") {
	if header :is "X-Helpgate-Urgency" ["P1", "P2"] {
		fileinto :create :flags ["\\Flagged", "$Important"] "${top}${sep}Notices";
	} else {
		fileinto :create "${top}${sep}Notices";
	}
	stop;
}

# 2. Machine-generated mail to support.
if exists "X-Helpgate-Auto" {
	fileinto :create "${top}${sep}Auto";
	stop;
}

# 3. A copy of helpgate-worker's acknowledgement to a client.
if allof (exists "X-Helpgate-Case",
    exists "X-Helpgate-Seal",
    not exists "X-Helpgate-Urgency",
    header :matches "Auto-Submitted" "auto-*") {
	fileinto :create "${top}${sep}Auto";
	stop;
}

if exists "X-Helpgate-Urgency" {
	# 4. Degraded: no case, no acknowledgement.  The inbox, flagged.
	if header :is "X-Helpgate-Status" "degraded" {
		keep :flags "\\Flagged Helpgate-Degraded ${flags}";
		stop;
	}

	# 5. By tier.  Only a plain name makes a folder (no separator, dot or
	#    wildcard can come from the header); anything else is "Unknown".
	if header :regex "X-Helpgate-Tier" "^([a-z0-9_-]+)(\\+watch)?$" {
		set :lower :upperfirst "tier" "${1}";
	} else {
		set "tier" "Unknown";
	}
	fileinto :create :flags "${flags}" "${top}${sep}${tier}";
	stop;
}
