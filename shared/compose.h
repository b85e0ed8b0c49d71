/*
 * compose - build a complete RFC 5322 message that helpgate sends
 * (acknowledgements, staff notices).
 *
 * Headers are written only from sanitised values: CR, LF and NUL from any
 * caller-supplied string become spaces, so nothing a client wrote can start
 * a header of its own.  The subject and display names are RFC 2047 encoded
 * when not ASCII.  The body is UTF-8 text sent as quoted-printable with CRLF
 * line ends, so no line exceeds 76 characters whatever the template holds.
 */
#ifndef HG_COMPOSE_H
#define HG_COMPOSE_H

#include <stddef.h>
#include <time.h>

struct seal_key;

struct compose_header {
	const char *name;		/* ASCII, e.g. "X-Helpgate-Case" */
	const char *value;		/* ASCII; sanitised */
};

/* An image shown inside the HTML part (<img src="cid:CONTENT_ID">). */
struct compose_inline {
	const char	*content_id;	/* without <>, ASCII */
	const char	*type;		/* "image/png" */
	const char	*name;		/* a file name for clients that list it */
	const unsigned char *data;
	size_t		 len;
};

struct compose {
	const char	*from_address;	/* bare addr-spec */
	const char	*from_name;	/* UTF-8, may be NULL */
	const char	*to_address;
	const char	*subject;	/* UTF-8 */
	const char	*message_id;	/* without <> */
	const char	*in_reply_to;	/* without <>, may be NULL or "" */
	const char	*references;	/* space-separated ids without <>, may be NULL */
	time_t		 date;
	const struct compose_header *extra;	/* may be NULL */
	size_t		 extra_count;
	const char	*body;		/* UTF-8 text, LF or CRLF line ends */
	/* With html, multipart/alternative: body as text/plain, then the HTML
	 * (UTF-8), inside multipart/related with the inline images. */
	const char	*html;
	const struct compose_inline *inlines;
	size_t		 inline_count;
	/* With a key, the message is sealed (X-Helpgate-Seal over message_id,
	 * case_id and date): it proves itself to helpgate-milter. */
	const struct seal_key *seal_key;
	long long	 case_id;
};

/* Returns the message (caller frees) with CRLF line ends. */
char	*compose_message(const struct compose *c);

/* Quoted-printable encoding of UTF-8 text, CRLF line ends (exposed for tests). */
char	*compose_qp_encode(const char *text);

/* Copies s with CR, LF, NUL and other C0 controls turned into spaces and
 * runs of spaces folded; caller frees. */
char	*compose_sanitize(const char *s);

#endif
