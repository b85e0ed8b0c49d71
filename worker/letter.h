/*
 * letter - every letter helpgate writes (acknowledgements, close-the-loop
 * and working-setting messages to clients; notices, diagnosis notes,
 * command answers, digests and reports to staff) becomes an outbox row
 * here: From, To, the thread (In-Reply-To, References), the RFC 3834
 * headers that say a machine wrote it, X-Helpgate-* headers, the seal,
 * text and optional HTML with inline images.  A producer renders its
 * words and calls letter_outbox(); sending is outbox.c's job.
 *
 * Also the small pieces letters are written with: a time span as people
 * say it, a text cell cut to a width, HTML escaping.
 */
#ifndef HG_LETTER_H
#define HG_LETTER_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "compose.h"
#include "store.h"

enum letter_auto {
	LETTER_PERSONAL,	/* staff's message sent for them (close the loop): none */
	LETTER_AUTO_REPLY,	/* an automatic answer to a person's mail (RFC 3834
				 * Auto-Submitted: auto-replied, Precedence,
				 * X-Auto-Response-Suppress) */
	LETTER_AUTO_GENERATED,	/* not an answer: notices, digests, reports */
};

struct letter {
	const char	*kind;		/* the outbox kind: "ack", "notice", "digest", ... */
	long long	 case_id;	/* 0: no case */
	const char	*tag;		/* in a Message-ID made from the case: "ack", "p1" */
	const char	*message_id;	/* or this one (digest slots); without <> */
	const char	*from, *from_name, *to, *subject;
	const char	*text;		/* UTF-8 */
	const char	*html;		/* NULL: text only */
	const struct compose_inline *inlines;
	size_t		 inline_count;
	const char	*in_reply_to, *references;	/* the thread; NULL: none */
	enum letter_auto automatic;
	const struct compose_header *extra;	/* X-Helpgate-* and the like */
	size_t		 extra_count;
	const struct seal_key *seal;	/* NULL: unsealed */
};

/* "hg-<case>.<tag>.<random>@<the support address's domain>" */
void	letter_message_id(char *out, size_t outlen, long long case_id, const char *tag,
	    const char *support_address);
/* Fills o (kind, case, recipient, Message-ID, content, times) for the
 * outbox; the caller adds it (store_outbox_add) and frees o->content. */
void	letter_outbox(const struct letter *l, time_t now, struct outbox_rec *o);

/* "<1m", "12m", "4h05m", "2d03h" for |secs|. */
void	letter_span(long long secs, char *out, size_t outlen);
/* Appends s cut to width characters (UTF-8), control characters as spaces. */
void	letter_text_cell(struct buf *b, const char *s, size_t width);
/* Appends s with & < > " ' escaped and control characters as spaces. */
void	letter_html_escape(struct buf *b, const char *s);

#endif
