/*
 * authres - is the From of a support message the sender's own?
 *
 * An acknowledgement goes to the From address.  Anyone can write any From,
 * so without a check helpgate would mail whoever an attacker names
 * (backscatter).  The check reads what the MTA's authentication milters
 * (OpenDKIM, OpenDMARC, rspamd) concluded, as Authentication-Results
 * headers (RFC 8601) whose authserv-id is one of TrustedAuthservID, never
 * any other; an MTA that stamps those must delete the ones a sender forged
 * under its name, as RFC 8601 section 5 asks.  AckPolicy says what counts:
 *
 *   aligned  the From domain is aligned (same organisational domain, as
 *            DMARC's relaxed mode) with a passing DKIM d= or SPF
 *            smtp.mailfrom when trusted results are there; with none, with
 *            the envelope sender's domain (default)
 *   dmarc    trusted results must say dmarc=pass for the From domain
 *   any      no check (a closed installation that trusts its senders)
 *
 * Parsing is linear in the header's length and never fails: what cannot be
 * read is not a pass.
 */
#ifndef HG_AUTHRES_H
#define HG_AUTHRES_H

#include <stddef.h>

#include "config.h"

struct msg;

enum authres_verdict {
	AUTHRES_VERIFIED,	/* answer the From */
	AUTHRES_UNVERIFIED,	/* do not: reason says why */
};

/* Decides for a parsed message and its envelope sender (with or without
 * <>); reason gets a short token for logs and skip reasons
 * ("dkim-aligned", "spf-aligned", "envelope-aligned", "dmarc-pass",
 * "policy-any", "not-aligned", "dmarc-fail", "no-dmarc-result",
 * "no-from"). */
enum authres_verdict authres_check(const struct config *cfg, const struct msg *m,
    const char *envelope_from, char *reason, size_t reasonlen);

/* One resinfo of one header, for the parser's tests. */
struct authres_result {
	char	method[16];	/* "spf", "dkim", "dmarc", ... lowercase */
	char	result[16];	/* "pass", "fail", ... lowercase */
	char	domain[256];	/* header.d / header.i's domain / smtp.mailfrom's
				 * domain / header.from, lowercase; "" if none */
};

/* Parses one header value: its authserv-id and up to max results.
 * Returns the number of results (0 for "none" or junk). */
size_t	authres_parse(const char *value, char *authserv_id, size_t idlen,
    struct authres_result *out, size_t max);

/* The organisational domain, roughly: the last two labels, or three when
 * the second-level label is short and generic (co.uk, com.au); without
 * the Public Suffix List this errs toward "not aligned". */
void	authres_org_domain(const char *domain, char *out, size_t outlen);

#endif
