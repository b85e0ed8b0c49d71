/*
 * relay - hand one finished message to the configured Relay (smtp:// or
 * smtps:// URL) with libcurl, and say whether it was taken.
 *
 * Never DATA-less, never partial: libcurl sends MAIL, RCPT, DATA and the
 * whole message, and the result is the relay's verdict on it.  Credentials
 * come from RelayCredentials ("user:password" on one line, file mode 0600
 * or stricter, else refused) and are never logged.  When credentials are
 * used over smtp://, STARTTLS is required, because libcurl would otherwise
 * skip AUTH silently on a server that offers none before TLS.
 */
#ifndef HG_RELAY_H
#define HG_RELAY_H

#include <stddef.h>

#include "config.h"

enum relay_result {
	RELAY_SENT,		/* the relay accepted the message */
	RELAY_TEMPFAIL,		/* try again later: connection, 4xx, timeout */
	RELAY_PERMFAIL,		/* the relay refused it for good (5xx) */
};

struct relay;

/* NULL (with err) when the Relay or its credentials are unusable. */
struct relay	*relay_open(const struct config *cfg, char *err, size_t errlen);
void		 relay_close(struct relay *r);		/* accepts NULL */

/* envelope_from "" sends MAIL FROM:<> (RFC 3834 auto-replies). err gets the
 * relay's own words or libcurl's, for the outbox record. */
enum relay_result relay_send(struct relay *r, const char *envelope_from,
		    const char *recipient, const char *content, char *err, size_t errlen);

/* The relay's last reply code in the last relay_send: >= 400 is a refusal
 * it stated; anything else after a failure (0: no connection, 354: DATA
 * accepted and then silence) means the outcome is unknown. */
long	relay_last_reply(const struct relay *r);

/* The Relay URL for logs: scheme, host and port only, never user:password.
 * Returns out ("(none: nothing is sent)" for NULL). */
const char *relay_describe(const char *url, char *out, size_t outlen);

#endif
