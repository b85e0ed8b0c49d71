# helpgate-staff.sieve - files support mail in a staff mailbox by urgency.
#
# For Dovecot Pigeonhole (RFC 5228 with fileinto, imap4flags, mailbox,
# variables).  Install it as a sieve_before script or as the user's active
# script: see conf/sieve/README.md.
#
# Folder layout (created on first use; "Support" and "/" are set below):
#
#   Support/P1       critical: \Flagged $Important $label1
#   Support/P2       high:     \Flagged $Important
#   Support/P3       normal
#   Support/P4       low: how-to questions, thanks, information
#   Support          tagged support mail with an urgency this script does
#                    not know (a newer helpgate?)
#   Support/Auto     machine-generated mail to support (X-Helpgate-Auto:
#                    auto-replies, bounces, lists) and copies of helpgate's
#                    own acknowledgements; never flagged
#   Support/Notices  helpgate's notices to staff (X-Helpgate-Notice: new P1
#                    case, SLA warnings, escalations); P1/P2 ones flagged
#   INBOX            support mail tagged "X-Helpgate-Status: degraded": the
#                    case store was down, so it has no case number and the
#                    client got no acknowledgement.  Kept in the inbox,
#                    always \Flagged, with the keyword Helpgate-Degraded,
#                    and $Important/$label1 like the others for P1/P2.
#
# Everything else (mail without helpgate's headers) is not touched: the
# script ends without an action and the implicit keep, or the user's own
# script after a sieve_before, decides.  Every rule that files a message
# ends with "stop", so that a personal script after this one cannot file a
# second copy.
#
# The headers keyed on are added by helpgate-milter, which deletes every
# X-Helpgate-* header a sender wrote, on every message it sees, and by
# helpgate-worker on its own messages, which prove themselves with
# X-Helpgate-Seal (checked by the milter: a message whose seal is not valid
# loses all its X-Helpgate-* headers).  Rules 1 and 3 ask for the seal.
# While helpgate-milter is down Postfix delivers mail as it came: see
# INSTALL, "When the milter is down", before trusting these headers then.

require ["fileinto", "imap4flags", "mailbox", "variables"];

# The top folder and the namespace's hierarchy separator.  Dovecot's
# default separator for Maildir++ is "."; with "separator = /" in the inbox
# namespace (recommended) keep "/".
set "top" "Support";
set "sep" "/";

# 1. helpgate-worker's notices to staff (new P1 case, SLA warning or
#    breach, escalation): a folder of their own, flagged while urgent.
if allof (exists "X-Helpgate-Notice", exists "X-Helpgate-Seal") {
	if header :is "X-Helpgate-Urgency" ["P1", "P2"] {
		fileinto :create :flags ["\\Flagged", "$Important"] "${top}${sep}Notices";
	} else {
		fileinto :create "${top}${sep}Notices";
	}
	stop;
}

# 2. Machine-generated mail to support, as helpgate-milter saw it
#    (auto-submitted, precedence-bulk, list, autoreply, null-sender,
#    mailer-daemon, delivery-report ...).
if exists "X-Helpgate-Auto" {
	fileinto :create "${top}${sep}Auto";
	stop;
}

# 3. A copy of helpgate-worker's acknowledgement to a client (it carries
#    X-Helpgate-Case and Auto-Submitted but no X-Helpgate-Urgency).
if allof (exists "X-Helpgate-Case",
    exists "X-Helpgate-Seal",
    not exists "X-Helpgate-Urgency",
    header :matches "Auto-Submitted" "auto-*") {
	fileinto :create "${top}${sep}Auto";
	stop;
}

# Only support mail tagged by helpgate-milter from here on.
if exists "X-Helpgate-Urgency" {
	# 4. Degraded: no case, no acknowledgement; someone must open a case
	#    by hand, whatever the urgency.  The inbox, flagged.
	if header :is "X-Helpgate-Status" "degraded" {
		if header :is "X-Helpgate-Urgency" "P1" {
			keep :flags ["\\Flagged", "Helpgate-Degraded", "$Important", "$label1"];
		} elsif header :is "X-Helpgate-Urgency" "P2" {
			keep :flags ["\\Flagged", "Helpgate-Degraded", "$Important"];
		} else {
			keep :flags ["\\Flagged", "Helpgate-Degraded"];
		}
		stop;
	}

	# 5. By urgency.
	if header :is "X-Helpgate-Urgency" "P1" {
		fileinto :create :flags ["\\Flagged", "$Important", "$label1"] "${top}${sep}P1";
	} elsif header :is "X-Helpgate-Urgency" "P2" {
		fileinto :create :flags ["\\Flagged", "$Important"] "${top}${sep}P2";
	} elsif header :is "X-Helpgate-Urgency" "P3" {
		fileinto :create "${top}${sep}P3";
	} elsif header :is "X-Helpgate-Urgency" "P4" {
		fileinto :create "${top}${sep}P4";
	} else {
		fileinto :create "${top}";
	}
	stop;
}
