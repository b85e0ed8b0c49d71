#include "intake.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "mailcmd.h"
#include "sla.h"

#define DAY_SECONDS	86400

const char *
intake_disposition_name(enum intake_disposition d)
{
	switch (d) {
	case INTAKE_NEW_CASE:	return "new";
	case INTAKE_FOLLOW_UP:	return "follow-up";
	case INTAKE_DUPLICATE:	return "duplicate";
	case INTAKE_NO_CASE:	return "no-case";
	case INTAKE_DEGRADED:	return "degraded";
	}
	return "?";
}

long long
intake_subject_case(const char *subject)
{
	for (const char *p = subject; (p = strchr(p, '[')) != NULL; p++) {
		const char *q = p + 1;
		char *end;
		long long n;

		if (strncasecmp(q, "HG-", 3) != 0 || !isdigit((unsigned char)q[3]))
			continue;
		errno = 0;
		n = strtoll(q + 3, &end, 10);
		if (errno == 0 && *end == ']' && n > 0)
			return n;
	}
	return 0;
}

/* Copies at most dstlen-1 bytes, never splitting a UTF-8 sequence. */
static void
copy_utf8(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen) {
		n = dstlen - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The client is who wrote the words: the From address, else the envelope. */
static void
intake_client(const struct intake_input *in, char *out, size_t outlen)
{
	const char *from = in->msg->from_address;

	if (from == NULL || *from == '\0')
		from = in->envelope_from ? in->envelope_from : "";
	snprintf(out, outlen, "%s", from);
	config_normalize_address(out);
	/* An addr-spec has no blanks, controls or specials: whatever follows
	 * the first one ("a@b NOTIFY=...", an escape sequence) is not part of
	 * the address, and must reach neither RCPT TO, a header nor a log. */
	for (char *p = out; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= 0x20 || ch == 0x7f || strchr("<>()[]\\,;:\"", ch) != NULL) {
			*p = '\0';
			break;
		}
	}
}

/* Which case does this message continue?  Subject tag first (the client
 * kept it as asked), then In-Reply-To, then References newest first. */
static enum store_rc
intake_find_thread(const struct intake_input *in, long long *case_id)
{
	const struct msg *m = in->msg;
	struct case_rec c;
	long long tagged = intake_subject_case(m->subject);
	enum store_rc rc;

	if (tagged > 0) {
		rc = store_case_get(in->store, tagged, &c);
		if (rc == STORE_OK) {
			*case_id = tagged;
			return STORE_OK;
		}
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	if (m->in_reply_to && *m->in_reply_to) {
		rc = store_message_case(in->store, m->in_reply_to, case_id);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	for (size_t i = m->reference_count; i > 0; i--) {
		rc = store_message_case(in->store, m->references[i - 1], case_id);
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	return STORE_NOTFOUND;
}

static void
intake_fill_message(const struct intake_input *in, const struct intake_result *out,
    long long case_id, struct message_rec *rec)
{
	const struct msg *m = in->msg;
	const char *date = msg_header_raw(m, "Date");

	memset(rec, 0, sizeof(*rec));
	rec->case_id = case_id;
	copy_utf8(rec->message_id, sizeof(rec->message_id), m->message_id ? m->message_id : "");
	snprintf(rec->direction, sizeof(rec->direction), "%s", out->staff ? "staff" : "in");
	copy_utf8(rec->sender, sizeof(rec->sender), out->client);
	rec->received = in->received;
	copy_utf8(rec->date_header, sizeof(rec->date_header), date ? date : "");
	copy_utf8(rec->subject, sizeof(rec->subject), m->subject ? m->subject : "");
	copy_utf8(rec->queue_id, sizeof(rec->queue_id), in->queue_id ? in->queue_id : "");
	rec->urgency = out->cls.urgency;
	copy_utf8(rec->category, sizeof(rec->category), out->cls.category);
	copy_utf8(rec->auto_reason, sizeof(rec->auto_reason), out->cls.auto_reason);
	copy_utf8(rec->excerpt, sizeof(rec->excerpt), m->text ? m->text : "");
	copy_utf8(rec->sender_auth, sizeof(rec->sender_auth), out->sender_auth);
	copy_utf8(rec->via, sizeof(rec->via), in->via ? in->via : "");
	/* Kept so that a reply to this message can carry the whole thread;
	 * the newest ids matter most, so drop the oldest when they do not fit. */
	size_t used = 0, start = 0;
	for (size_t i = m->reference_count; i > 0; i--) {
		size_t len = strlen(m->references[i - 1]) + 1;
		if (used + len >= sizeof(rec->references))
			break;
		used += len;
		start = i - 1;
	}
	if (used > 0) {
		char *p = rec->references;
		for (size_t i = start; i < m->reference_count; i++) {
			size_t len = strlen(m->references[i]);
			if (p != rec->references)
				*p++ = ' ';
			memcpy(p, m->references[i], len);
			p += len;
		}
		*p = '\0';
	}
}

static void
intake_degrade(struct intake_result *out, const struct intake_input *in,
    const char *what, enum store_rc rc)
{
	out->disposition = INTAKE_DEGRADED;
	out->case_id = 0;
	out->store_rc = rc;
	snprintf(out->error, sizeof(out->error), "%s: %s%s%s", what, store_strerror(rc),
	    in->store ? ": " : "", in->store ? store_errmsg(in->store) : "");
}

/* Raises the urgency per the rubric and computes the deadline. */
static void
intake_finish_classification(const struct intake_input *in, struct intake_result *out,
    int recent)
{
	classify_adjust(&out->cls, out->tier, out->watch, recent);
	out->first_due = sla_deadline(in->cfg, out->tier, out->cls.urgency,
	    SLA_FIRST_RESPONSE, in->received);
}

enum store_rc
intake_resume(const struct intake_input *in, const struct case_rec *c)
{
	long paused = c->paused_at ? sla_clock_seconds(in->cfg, c->urgency, (time_t)c->paused_at,
	    in->received) : 0;
	long long total = c->paused_total + (paused > 0 ? paused : 0);
	/* The old deadline moves by the clock time the case stood; it is not
	 * recomputed, so a raise in urgency meanwhile cannot pull it earlier. */
	time_t due = paused > 0 ? sla_clock_add(in->cfg, c->urgency, (time_t)c->resolve_due, paused) :
	    (time_t)c->resolve_due;
	time_t warn = sla_point(in->cfg, c->tier, c->urgency, SLA_RESOLUTION, (time_t)c->created,
	    in->cfg->warn_at_pct, (long)total);
	enum store_rc rc;

	if ((rc = store_case_set_status(in->store, c->id, "open", in->received, 0, due, 0,
	    total)) != STORE_OK)
		return rc;
	if (c->paused_at && (rc = store_pause_add(in->store, c->id, c->paused_at,
	    in->received)) != STORE_OK)
		return rc;
	if ((rc = store_event_reschedule(in->store, c->id, "resolve-warning",
	    warn < due ? warn : due)) != STORE_OK)
		return rc;
	return store_event_reschedule(in->store, c->id, "resolve-breach", due);
}

/* Puts why at the front of the reasons staff read (X-Helpgate-Reasons),
 * cutting what no longer fits at a character boundary. */
static void
intake_add_reason(struct classify_result *cls, const char *why)
{
	char old[sizeof(cls->reasons)];

	memcpy(old, cls->reasons, sizeof(old));
	if (old[0] == '\0')
		copy_utf8(cls->reasons, sizeof(cls->reasons), why);
	else {
		char both[sizeof(cls->reasons) * 2];

		snprintf(both, sizeof(both), "%s; %s", why, old);
		copy_utf8(cls->reasons, sizeof(cls->reasons), both);
	}
	/* part of the content's reasons: classify_adjust keeps them */
	cls->reasons_content_len = strlen(cls->reasons);
}

void
intake_classify(const struct intake_input *in, struct intake_result *out)
{
	memset(out, 0, sizeof(*out));
	classify_message(in->rules, in->msg, in->envelope_from, &out->cls);
	intake_client(in, out->client, sizeof(out->client));
	out->staff = in->staff_authenticated;
	/* Anyone can write a staff address into From or MAIL FROM: without
	 * the MTA's word it is a client's message, and staff are told why. */
	if (!out->staff && (config_is_staff(in->cfg, out->client) ||
	    (in->envelope_from != NULL && config_is_staff(in->cfg, in->envelope_from)))) {
		out->staff_claim = 1;
		intake_add_reason(&out->cls, "unauthenticated staff claim: treated as a client");
	}
	snprintf(out->tier, sizeof(out->tier), "unknown");
	/* Whether the From may be answered automatically: staff see the
	 * case either way, the worker reads the verdict. */
	if (!out->staff && out->cls.auto_reason[0] == '\0') {
		char why[32];
		enum authres_verdict v = authres_check(in->cfg, in->msg, in->envelope_from, why,
		    sizeof(why));

		snprintf(out->sender_auth, sizeof(out->sender_auth), "%s:%s",
		    v == AUTHRES_VERIFIED ? "verified" : "unverified", why);
		if (v != AUTHRES_VERIFIED) {
			char reason[96];

			snprintf(reason, sizeof(reason), "From not verified (%s): no automatic answer", why);
			intake_add_reason(&out->cls, reason);
		}
	}
}

void
intake_process(const struct intake_input *in, struct intake_result *out)
{
	intake_classify(in, out);
	intake_record(in, out);
}

void
intake_record(const struct intake_input *in, struct intake_result *out)
{
	struct customer cust;
	struct case_rec c;
	struct message_rec rec;
	struct classify_result content = out->cls;	/* before any raise */
	long long case_id = 0;
	enum store_rc rc;
	int recent = 1;

	if (in->store == NULL) {
		intake_finish_classification(in, out, recent);
		out->disposition = INTAKE_DEGRADED;
		snprintf(out->error, sizeof(out->error), "store unavailable");
		return;
	}
	if ((rc = store_begin(in->store)) != STORE_OK) {
		intake_finish_classification(in, out, recent);
		intake_degrade(out, in, "begin", rc);
		return;
	}

	rc = store_customer_lookup(in->store, out->client, &cust);
	if (rc == STORE_OK) {
		copy_utf8(out->tier, sizeof(out->tier), cust.tier);
		out->watch = cust.watch_until > in->received;
	} else if (rc != STORE_NOTFOUND) {
		goto fail;
	}

	/* A Message-ID seen before is the same message delivered again
	 * (a resend, or a second recipient's copy): tag it, record nothing. */
	if (in->msg->message_id && *in->msg->message_id) {
		rc = store_message_case(in->store, in->msg->message_id, &case_id);
		if (rc == STORE_OK) {
			store_rollback(in->store);
			out->case_id = case_id;
			out->disposition = INTAKE_DUPLICATE;
			intake_finish_classification(in, out, recent);
			if (store_case_get(in->store, case_id, &c) == STORE_OK)
				out->first_due = (time_t)c.first_due;
			return;
		}
		if (rc != STORE_NOTFOUND)
			goto fail;
	}

	rc = intake_find_thread(in, &case_id);
	if (rc == STORE_OK) {
		rc = store_message_count_since(in->store, case_id, in->received - DAY_SECONDS, &recent);
		if (rc != STORE_OK)
			goto fail;
		if (!out->staff)
			recent++;	/* this message */
		if ((rc = store_case_get(in->store, case_id, &c)) != STORE_OK)
			goto fail;
		intake_finish_classification(in, out, strcmp(c.status, "resolved") ? recent : 1);
		/* The promise made when the case opened still stands. */
		out->first_due = (time_t)c.first_due;
		/* Anyone who knows "[HG-5]" can write into case 5; only the
		 * client's own side (same domain) moves its urgency. */
		const char *at_case = strrchr(c.client, '@'), *at_me = strrchr(out->client, '@');
		int same_side = at_case && at_me && strcmp(at_case, at_me) == 0;
		if (!out->staff && out->cls.auto_reason[0] == '\0' && same_side) {
			rc = store_case_touch(in->store, case_id, out->cls.urgency, in->received);
			if (rc != STORE_OK)
				goto fail;
		}
		/* The client answered while we waited for them: the resolution
		 * clock runs again, its deadline moved by the time it stood. */
		if (same_side && !out->staff && out->cls.auto_reason[0] == '\0' &&
		    strcmp(c.status, "waiting") == 0 &&
		    (rc = intake_resume(in, &c)) != STORE_OK)
			goto fail;
		/* Staff answering the case (through a submission service that
		 * passes this milter) stops the first-response clock. */
		if (out->staff && (rc = store_case_responded(in->store, case_id,
		    in->received)) != STORE_OK)
			goto fail;
		out->disposition = INTAKE_FOLLOW_UP;
	} else if (rc == STORE_NOTFOUND) {
		intake_finish_classification(in, out, recent);
		if (out->cls.auto_reason[0] != '\0') {
			/* Bounces, out-of-office and list mail that answer no
			 * case would only fill the queue with deadlines nobody
			 * owes: they pass tagged, without a case. */
			store_rollback(in->store);
			out->disposition = INTAKE_NO_CASE;
			return;
		}
		memset(&c, 0, sizeof(c));
		c.created = c.updated = in->received;
		snprintf(c.status, sizeof(c.status), "open");
		copy_utf8(c.client, sizeof(c.client), out->client);
		copy_utf8(c.support_address, sizeof(c.support_address),
		    in->support_address ? in->support_address : "");
		copy_utf8(c.subject, sizeof(c.subject), in->msg->subject ? in->msg->subject : "");
		c.urgency = out->cls.urgency;
		copy_utf8(c.tier, sizeof(c.tier), out->tier);
		c.watch = out->watch;
		copy_utf8(c.category, sizeof(c.category), out->cls.category);
		copy_utf8(c.lang, sizeof(c.lang), out->cls.lang);
		copy_utf8(c.reasons, sizeof(c.reasons), out->cls.reasons);
		c.first_due = out->first_due;
		c.resolve_due = sla_deadline(in->cfg, out->tier, out->cls.urgency,
		    SLA_RESOLUTION, in->received);
		if ((rc = store_case_create(in->store, &c)) != STORE_OK)
			goto fail;
		case_id = c.id;
		out->disposition = INTAKE_NEW_CASE;
	} else {
		goto fail;
	}

	intake_fill_message(in, out, case_id, &rec);
	rc = store_message_add(in->store, &rec);
	if (rc != STORE_OK && rc != STORE_EXISTS)
		goto fail;
	if ((rc = store_commit(in->store)) != STORE_OK)
		goto fail;
	out->case_id = case_id;
	return;

fail:
	store_rollback(in->store);
	intake_degrade(out, in, "store", rc);
	/* Without the store we still know the content, and the tier if the
	 * lookup got that far; start from the content so no raise counts twice. */
	out->cls = content;
	intake_finish_classification(in, out, 1);
}

long long
intake_staff_reply(const struct intake_input *in)
{
	struct intake_result *out;
	struct message_rec rec;
	long long case_id = 0;
	enum store_rc rc;

	if (in->store == NULL)
		return -1;
	out = calloc(1, sizeof(*out));
	if (out == NULL)
		return -1;
	intake_client(in, out->client, sizeof(out->client));
	out->staff = 1;
	out->cls.urgency = 4;
	if ((rc = store_begin(in->store)) != STORE_OK)
		goto fail_nobegin;
	rc = intake_find_thread(in, &case_id);
	if (rc == STORE_NOTFOUND) {
		store_rollback(in->store);
		free(out);
		return 0;
	}
	if (rc != STORE_OK)
		goto fail;
	intake_fill_message(in, out, case_id, &rec);
	snprintf(rec.ack, sizeof(rec.ack), "n/a");
	rc = store_message_add(in->store, &rec);
	if (rc == STORE_EXISTS) {	/* the same reply seen twice */
		store_rollback(in->store);
		free(out);
		return case_id;
	}
	if (rc != STORE_OK)
		goto fail;
	if ((rc = store_case_responded(in->store, case_id, in->received)) != STORE_OK)
		goto fail;
	if ((rc = store_commit(in->store)) != STORE_OK)
		goto fail;
	free(out);
	return case_id;
fail:
	store_rollback(in->store);
fail_nobegin:
	free(out);
	return -1;
}

long long
intake_staff_commands(const struct intake_input *in, const struct mailcmd_list *cmds,
    const char *login, int record_reply)
{
	struct intake_result *out;
	struct mailcmd_rec *mc;
	struct message_rec rec;
	long long case_id = 0;
	enum store_rc rc;
	size_t len = 0;

	if (in->store == NULL)
		return -1;
	out = calloc(1, sizeof(*out));
	mc = calloc(1, sizeof(*mc));
	if (out == NULL || mc == NULL) {
		free(out);
		free(mc);
		return -1;
	}
	/* Who commands: the login when it is an address (the usual), else the
	 * envelope sender of the session the MTA authenticated. */
	snprintf(mc->staff, sizeof(mc->staff), "%s",
	    login && strchr(login, '@') ? login : in->envelope_from ? in->envelope_from : "");
	config_normalize_address(mc->staff);
	snprintf(mc->login, sizeof(mc->login), "%s", login ? login : "");
	snprintf(mc->message_id, sizeof(mc->message_id), "%s", in->msg->message_id);
	snprintf(mc->subject, sizeof(mc->subject), "%s", in->msg->subject);
	for (size_t i = 0; i < cmds->n; i++) {
		int n = snprintf(mc->commands + len, sizeof(mc->commands) - len, "%s%s",
		    i ? "\n" : "", cmds->v[i].line);

		if (n < 0 || (size_t)n >= sizeof(mc->commands) - len)
			break;
		len += (size_t)n;
	}
	mc->received = in->received;
	intake_client(in, out->client, sizeof(out->client));
	out->staff = 1;
	out->cls.urgency = 4;
	if ((rc = store_begin(in->store)) != STORE_OK)
		goto fail_nobegin;
	rc = intake_find_thread(in, &case_id);
	if (rc == STORE_NOTFOUND)
		case_id = 0;		/* recorded all the same: the answer says so */
	else if (rc != STORE_OK)
		goto fail;
	mc->case_id = case_id;
	if ((rc = store_mailcmd_add(in->store, mc)) != STORE_OK)
		goto fail;
	if (record_reply && case_id > 0) {
		intake_fill_message(in, out, case_id, &rec);
		snprintf(rec.ack, sizeof(rec.ack), "n/a");
		rc = store_message_add(in->store, &rec);
		if (rc == STORE_OK)
			rc = store_case_responded(in->store, case_id, in->received);
		else if (rc == STORE_EXISTS)
			rc = STORE_OK;
		if (rc != STORE_OK)
			goto fail;
	}
	if ((rc = store_commit(in->store)) != STORE_OK)
		goto fail;
	free(out);
	free(mc);
	return case_id;
fail:
	store_rollback(in->store);
fail_nobegin:
	free(out);
	free(mc);
	return -1;
}
