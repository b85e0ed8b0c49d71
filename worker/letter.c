/*
 * letter - see letter.h.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "letter.h"

/* Lowercase, so that the milter (which lowercases what it sees) matches it. */
void
letter_message_id(char *out, size_t outlen, long long case_id, const char *tag,
    const char *support_address)
{
	unsigned char rnd[8];
	const char *domain = strrchr(support_address ? support_address : "", '@');
	char hex[17];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(rnd, &ts.tv_nsec, sizeof(rnd) < sizeof(ts.tv_nsec) ? sizeof(rnd) : sizeof(ts.tv_nsec));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(out, outlen, "hg-%lld.%s.%s@%s", case_id, tag, hex,
	    domain ? domain + 1 : "helpgate.invalid");
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

void
letter_outbox(const struct letter *l, time_t now, struct outbox_rec *o)
{
	static const struct compose_header reply[] = {
		{ "Auto-Submitted", "auto-replied" },
		{ "X-Auto-Response-Suppress", "All" },
		{ "Precedence", "auto_reply" },
	};
	static const struct compose_header generated[] = {
		{ "Auto-Submitted", "auto-generated" },
	};
	struct compose_header hdr[16];
	size_t n = 0;

	memset(o, 0, sizeof(*o));
	o->case_id = l->case_id;
	snprintf(o->kind, sizeof(o->kind), "%s", l->kind);
	snprintf(o->recipient, sizeof(o->recipient), "%s", l->to);
	if (l->message_id != NULL)
		snprintf(o->message_id, sizeof(o->message_id), "%s", l->message_id);
	else
		letter_message_id(o->message_id, sizeof(o->message_id), l->case_id, l->tag, l->from);
	/* the producer's headers first (X-Helpgate-Case leads), then RFC 3834 */
	for (size_t i = 0; i < l->extra_count && n < sizeof(hdr) / sizeof(hdr[0]); i++)
		hdr[n++] = l->extra[i];
	if (l->automatic == LETTER_AUTO_REPLY)
		for (size_t i = 0; i < sizeof(reply) / sizeof(reply[0]); i++)
			hdr[n++] = reply[i];
	else if (l->automatic == LETTER_AUTO_GENERATED)
		hdr[n++] = generated[0];
	struct compose msg = {
		.from_address = l->from,
		.from_name = l->from_name,
		.to_address = l->to,
		.subject = l->subject,
		.message_id = o->message_id,
		.in_reply_to = l->in_reply_to,
		.references = l->references,
		.date = now,
		.extra = hdr,
		.extra_count = n,
		.body = l->text,
		.html = l->html,
		.inlines = l->inlines,
		.inline_count = l->inline_count,
		.seal_key = l->seal,
		.case_id = l->case_id,
	};
	o->content = compose_message(&msg);
	o->created = o->next_attempt = now;
}

void
letter_span(long long secs, char *out, size_t outlen)
{
	if (secs < 0)
		secs = -secs;
	if (secs < 60)
		snprintf(out, outlen, "<1m");
	else if (secs >= 86400)
		snprintf(out, outlen, "%lldd%02lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(out, outlen, "%lldh%02lldm", secs / 3600, secs % 3600 / 60);
	else
		snprintf(out, outlen, "%lldm", secs / 60);
}

void
letter_text_cell(struct buf *b, const char *s, size_t width)
{
	size_t chars = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) != 0x80 && ++chars > width)
			break;
		buf_append_char(b, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
	}
}

void
letter_html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default:
			buf_append_char(b, (unsigned char)*s < 0x20 ? ' ' : *s);
		}
	}
}
