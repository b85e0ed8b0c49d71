#include "ack.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "buf.h"
#include "clock.h"
#include "compose.h"
#include "seal.h"
#include "log.h"
#include "msg.h"
#include "template.h"
#include "timers.h"
#include "letter.h"
#include "xalloc.h"

#define TEMPLATE_FILES_MAX	256
#define QUARTER_HOUR		900

struct template_file {
	char	*name;		/* "ack.en.txt" */
	char	*text;
};

struct ack_ctx {
	const struct config	*cfg;
	regex_t			*no_reply;
	size_t			 no_reply_count;
	struct template_file	*files;
	size_t			 file_count;
	struct seal_key		 seal;		/* every letter is sealed (seal.h) */
	int			 have_seal;	/* ack_load_seal succeeded */
};

/* ---- templates ---- */

static const char *
ack_template(const struct ack_ctx *a, const char *name)
{
	for (size_t i = 0; i < a->file_count; i++)
		if (strcmp(a->files[i].name, name) == 0)
			return a->files[i].text;
	return NULL;
}

/* kind.lang.txt, else kind.en.txt. */
static const char *
ack_template_lang(const struct ack_ctx *a, const char *kind, const char *lang)
{
	char name[128];
	const char *t;

	snprintf(name, sizeof(name), "%s.%s.txt", kind, lang && *lang ? lang : "en");
	if ((t = ack_template(a, name)) != NULL)
		return t;
	snprintf(name, sizeof(name), "%s.en.txt", kind);
	return ack_template(a, name);
}

static int
ack_load_templates(struct ack_ctx *a, const char *dir, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		snprintf(err, errlen, "TemplatesDir %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL && a->file_count < TEMPLATE_FILES_MAX) {
		size_t len = strlen(de->d_name);
		char *text;

		if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0 || de->d_name[0] == '.')
			continue;
		if ((text = template_read(dir, de->d_name)) == NULL) {
			snprintf(err, errlen, "template %s/%s: unreadable or too large", dir, de->d_name);
			closedir(d);
			return -1;
		}
		a->files = xrealloc(a->files, (a->file_count + 1) * sizeof(*a->files));
		a->files[a->file_count].name = xstrdup(de->d_name);
		a->files[a->file_count].text = text;
		a->file_count++;
	}
	closedir(d);
	static const char *const required[] = { "ack.en.txt", "ask.other.en.txt", "notice-p1.en.txt" };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (ack_template(a, required[i]) == NULL) {
			snprintf(err, errlen, "template %s/%s is missing", dir, required[i]);
			return -1;
		}
	}
	return 0;
}

struct ack_ctx *
ack_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	struct ack_ctx *a = xcalloc(1, sizeof(*a));

	a->cfg = cfg;
	a->no_reply = xcalloc(cfg->no_reply_patterns.count + 1, sizeof(regex_t));
	for (size_t i = 0; i < cfg->no_reply_patterns.count; i++) {
		if (regcomp(&a->no_reply[i], cfg->no_reply_patterns.items[i],
		    REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
			snprintf(err, errlen, "NoReplyPattern %s does not compile",
			    cfg->no_reply_patterns.items[i]);
			ack_ctx_free(a);
			return NULL;
		}
		a->no_reply_count++;
	}
	if (ack_load_templates(a, cfg->templates_dir, err, errlen) != 0) {
		ack_ctx_free(a);
		return NULL;
	}
	return a;
}

int
ack_load_seal(struct ack_ctx *a, char *err, size_t errlen)
{
	if (!a->have_seal && seal_key_load(a->cfg->seal_key_file, &a->seal, err, errlen) == 0)
		a->have_seal = 1;
	return a->have_seal ? 0 : -1;
}

int
ack_seal_valid(const struct ack_ctx *a, const struct msg *m)
{
	const char *value = msg_header_raw(m, "X-Helpgate-Seal");
	struct buf cover;
	long long when;
	int ok;

	if (a == NULL || !a->have_seal || value == NULL ||
	    sscanf(value, " v=1; t=%lld;", &when) != 1)
		return 0;
	buf_init(&cover, SEAL_COVER_MAX);
	for (size_t i = 0; i < m->header_count; i++)
		seal_cover_add(&cover, m->headers[i].name, m->headers[i].raw);
	/* verified as of its own time: age is no question here */
	ok = seal_verify(&a->seal, value, m->message_id, &cover, (time_t)when, NULL);
	buf_free(&cover);
	return ok;
}

void
ack_ctx_free(struct ack_ctx *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->no_reply_count; i++)
		regfree(&a->no_reply[i]);
	free(a->no_reply);
	for (size_t i = 0; i < a->file_count; i++) {
		free(a->files[i].name);
		free(a->files[i].text);
	}
	free(a->files);
	free(a);
}

/* ---- variables ---- */

struct ack_vars {
	const struct case_rec	*c;
	char	case_name[32];
	char	*subject;		/* sanitised */
	char	due_local[64];
	char	due_zone[96];
	char	due_minutes[24];
	char	due_hours[24];
	char	due_hours_plural[4];
	char	due_in_minutes[4];
	char	urgency[4];
	const char *ask;		/* rendered per-category text */
	const char *alternative;
	const char *event;		/* what happened, for notices to staff */
	/* the diagnosis (issue 5): a working setting for the client ... */
	const char *alt_host;
	char	alt_port[8];
	const char *alt_security;	/* as a mail program labels it: "STARTTLS" */
	/* ... and the note to staff */
	const struct ack_diagnosis *diag;
};

static const char *
ack_lookup(const char *name, void *arg)
{
	const struct ack_vars *v = arg;

	if (!strcmp(name, "case")) return v->case_name;
	if (!strcmp(name, "subject")) return v->subject;
	if (!strcmp(name, "client")) return v->c->client;
	if (!strcmp(name, "support_address")) return v->c->support_address;
	if (!strcmp(name, "tier")) return v->c->tier;
	if (!strcmp(name, "category")) return v->c->category;
	if (!strcmp(name, "urgency")) return v->urgency;
	if (!strcmp(name, "reasons")) return v->c->reasons;
	if (!strcmp(name, "due_local")) return v->due_local;
	if (!strcmp(name, "due_zone")) return v->due_zone;
	if (!strcmp(name, "due_minutes")) return v->due_minutes;
	if (!strcmp(name, "due_hours")) return v->due_hours;
	if (!strcmp(name, "due_hours_plural")) return v->due_hours_plural;
	if (!strcmp(name, "due_in_minutes")) return v->due_in_minutes;
	if (!strcmp(name, "ask")) return v->ask ? v->ask : "";
	if (!strcmp(name, "alternative")) return v->alternative ? v->alternative : "";
	if (!strcmp(name, "event")) return v->event ? v->event : "";
	if (!strcmp(name, "assignee")) return v->c->assignee;
	if (!strcmp(name, "status")) return v->c->status;
	if (!strcmp(name, "alt_host")) return v->alt_host ? v->alt_host : "";
	if (!strcmp(name, "alt_port")) return v->alt_port;
	if (!strcmp(name, "alt_security")) return v->alt_security ? v->alt_security : "";
	if (!strncmp(name, "diag_", 5)) {
		const struct ack_diagnosis *d = v->diag;
		const char *val = NULL;

		if (!strcmp(name, "diag_verdict")) val = d ? d->verdict : NULL;
		else if (!strcmp(name, "diag_target")) val = d ? d->target : NULL;
		else if (!strcmp(name, "diag_source")) val = d ? d->source : NULL;
		else if (!strcmp(name, "diag_report")) val = d ? d->report : NULL;
		else if (!strcmp(name, "diag_alternative")) val = d ? d->alternative : NULL;
		else if (!strcmp(name, "diag_incident")) val = d ? d->incident : NULL;
		else if (!strcmp(name, "diag_client_note")) val = d ? d->client_note : NULL;
		else return NULL;
		return val ? val : "";
	}
	return NULL;
}

/*
 * The time promised to the client: the SLA deadline plus AckMargin, rounded
 * up to a quarter hour.  Staff work to the deadline; the client is told a
 * time we can keep even on a bad day.
 */
static void
ack_fill_due(struct ack_vars *v, const struct config *cfg, time_t now)
{
	time_t promise = (time_t)v->c->first_due + cfg->ack_margin;
	struct tm tm;
	long left, off;

	promise = (promise + QUARTER_HOUR - 1) / QUARTER_HOUR * QUARTER_HOUR;
	if (localtime_r(&promise, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	strftime(v->due_local, sizeof(v->due_local), "%Y-%m-%d %H:%M", &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(v->due_zone, sizeof(v->due_zone), "%s, UTC%c%02ld:%02ld", cfg->timezone,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	left = (long)(promise - now);
	if (left < 60)
		left = 60;
	snprintf(v->due_minutes, sizeof(v->due_minutes), "%ld", (left + 299) / 300 * 5);
	snprintf(v->due_hours, sizeof(v->due_hours), "%ld", (left + 3599) / 3600);
	snprintf(v->due_hours_plural, sizeof(v->due_hours_plural), "%s",
	    (left + 3599) / 3600 == 1 ? "" : "s");
	snprintf(v->due_in_minutes, sizeof(v->due_in_minutes), "%s", left < 90 * 60 ? "yes" : "");
}

char *
ack_subject(long long case_id, const char *subject)
{
	static const char *const prefixes[] = {
		"re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "tr:", "rif:", "r:",
		"antw:", "odp:", "ответ:", "отв:", "відповідь:", "відп:",
		/* strncasecmp folds ASCII only: the usual Cyrillic spellings */
		"Ответ:", "ОТВЕТ:", "Отв:", "Відповідь:", "ВІДПОВІДЬ:", "Відп:",
	};
	char *clean = compose_sanitize(subject ? subject : ""), *p = clean;
	struct buf b;
	int again = 1;

	while (again) {
		again = 0;
		while (*p == ' ')
			p++;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			size_t n = strlen(prefixes[i]);
			if (strncasecmp(p, prefixes[i], n) == 0) {
				p += n;
				again = 1;
			}
		}
		/* An old "[HG-n]" tag, ours or a wrong one, is replaced. */
		if (strncasecmp(p, "[hg-", 4) == 0 && strchr(p, ']') != NULL) {
			p = strchr(p, ']') + 1;
			again = 1;
		}
	}
	buf_init(&b, 4096);
	buf_printf(&b, "Re: [HG-%lld]%s%s", case_id, *p ? " " : "", p);
	free(clean);
	return buf_steal(&b);
}

/* ---- decisions ---- */

static int
ack_no_reply(const struct ack_ctx *a, const char *address)
{
	for (size_t i = 0; i < a->no_reply_count; i++)
		if (regexec(&a->no_reply[i], address, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

/* Why the message gets no acknowledgement, or NULL when it gets one. */
static const char *
ack_skip_reason(const struct ack_ctx *a, struct store *s, const struct message_rec *m,
    const struct case_rec *c, time_t now, char *why, size_t whylen, enum store_rc *rc)
{
	long long first = 0;
	int count = 0;

	*rc = STORE_OK;
	if (strcmp(m->direction, "in") != 0)
		return strcmp(m->direction, "staff") == 0 ? "staff" : "not-from-client";
	if (m->auto_reason[0] != '\0') {
		snprintf(why, whylen, "auto:%s", m->auto_reason);
		return why;
	}
	if ((*rc = store_case_first_message(s, m->case_id, &first)) != STORE_OK)
		return NULL;
	if (first != m->id)
		return "follow-up";
	if (c->client[0] == '\0' || strchr(c->client, '@') == NULL ||
	    strchr(c->client, '@') == c->client || strchr(c->client, '@')[1] == '\0')
		return "no-address";
	if (config_is_staff(a->cfg, c->client))
		return "staff";
	if (config_is_support_address(a->cfg, c->client))
		return "support-address";
	if (ack_no_reply(a, c->client))
		return "no-reply-sender";
	/* a From nobody vouched for: answering it would mail whoever an
	 * attacker names (authres.h) */
	if (strncmp(m->sender_auth, "unverified:", 11) == 0) {
		snprintf(why, whylen, "sender-unverified:%s", m->sender_auth + 11);
		return why;
	}
	if ((*rc = store_outbox_count_kind(s, "ack", NULL, now - 3600, &count)) != STORE_OK)
		return NULL;
	if (count >= a->cfg->ack_global_per_hour)
		return "rate-limit-all";
	if ((*rc = store_outbox_count_acks(s, c->client, now - 3600, &count)) != STORE_OK)
		return NULL;
	if (count >= a->cfg->ack_per_hour)
		return "rate-limit-hour";
	if ((*rc = store_outbox_count_acks(s, c->client, now - 86400, &count)) != STORE_OK)
		return NULL;
	if (count >= a->cfg->ack_per_day)
		return "rate-limit-day";
	return NULL;
}

static int
ack_render(const struct ack_ctx *a, const char *kind, const char *lang,
    struct ack_vars *v, struct buf *out, char *err, size_t errlen)
{
	const char *text = ack_template_lang(a, kind, lang);

	if (text == NULL) {
		snprintf(err, errlen, "no template %s.%s.txt", kind, lang);
		return -1;
	}
	if (template_render(text, ack_lookup, v, out, err, errlen) != 0)
		return -1;
	return 0;
}

static void
ack_vars_init(struct ack_vars *v, const struct ack_ctx *a, const struct case_rec *c, time_t now)
{
	memset(v, 0, sizeof(*v));
	v->c = c;
	snprintf(v->case_name, sizeof(v->case_name), "HG-%lld", c->id);
	v->subject = compose_sanitize(c->subject);
	snprintf(v->urgency, sizeof(v->urgency), "P%d", c->urgency);
	ack_fill_due(v, a->cfg, now);
}

/* "STARTTLS", "SSL/TLS", "none": what mail programs call the security
 * settings, so the client finds the one to pick. */
static const char *
ack_security_label(const char *security)
{
	if (security == NULL || *security == '\0')
		return "";
	if (strcmp(security, "tls") == 0)
		return "SSL/TLS";
	if (strcmp(security, "starttls") == 0)
		return "STARTTLS";
	return "none";
}

/* Builds the outbox row for a message to the client in the case's thread:
 * the acknowledgement (template "ack", kind "ack"), the close-the-loop
 * message (template "close", kind "close") or the working setting found by
 * the diagnosis (template "alternative", kind "alternative").  alt, when
 * not NULL, fills {{alternative}}, {{alt_host}}, {{alt_port}},
 * {{alt_security}}: only the setting, never credentials or probe steps. */
static int
ack_build_reply(const struct ack_ctx *a, const struct case_rec *c, const struct message_rec *m,
    const char *template_kind, const struct ack_alternative *alt, time_t now,
    struct outbox_rec *o, char *err, size_t errlen)
{
	struct ack_vars v;
	struct buf ask, body, refs;
	char category_kind[80];
	int rc = -1;

	ack_vars_init(&v, a, c, now);
	if (alt != NULL && alt->host != NULL && alt->host[0] != '\0') {
		v.alternative = "yes";
		v.alt_host = alt->host;
		snprintf(v.alt_port, sizeof(v.alt_port), "%d", alt->port);
		v.alt_security = ack_security_label(alt->security);
	}
	buf_init(&ask, 64 * 1024);
	buf_init(&body, 256 * 1024);
	buf_init(&refs, 4096);
	snprintf(category_kind, sizeof(category_kind), "ask.%s", c->category);
	if (ack_template_lang(a, category_kind, c->lang) == NULL)
		snprintf(category_kind, sizeof(category_kind), "ask.other");
	if (ack_render(a, category_kind, c->lang, &v, &ask, err, errlen) != 0)
		goto out;
	v.ask = buf_str(&ask);
	if (ack_render(a, template_kind, c->lang, &v, &body, err, errlen) != 0)
		goto out;

	if (m->references[0])
		buf_printf(&refs, "%s ", m->references);
	buf_append_str(&refs, m->message_id);

	char *subject = ack_subject(c->id, c->subject);
	/* The acknowledgement and the working setting are automatic
	 * replies; closing the loop is staff's own message sent on their
	 * behalf and expects an answer. */
	int automatic = strcmp(template_kind, "ack") == 0 ||
	    strcmp(template_kind, "alternative") == 0;
	struct compose_header extra[] = { { "X-Helpgate-Case", v.case_name } };
	struct letter l = {
		.kind = template_kind, .case_id = c->id, .tag = template_kind,
		.from = c->support_address, .from_name = a->cfg->from_name, .to = c->client,
		.subject = subject, .text = buf_str(&body),
		.in_reply_to = m->message_id, .references = buf_str(&refs),
		.automatic = automatic ? LETTER_AUTO_REPLY : LETTER_PERSONAL,
		.extra = extra, .extra_count = 1,
		.seal = a->have_seal ? &a->seal : NULL,
	};
	letter_outbox(&l, now, o);
	free(subject);
	rc = 0;
out:
	free(v.subject);
	buf_free(&ask);
	buf_free(&body);
	buf_free(&refs);
	return rc;
}

/* The common end of a note to staff (ack_notice, ack_diagnosis_note):
 * composes *o of kind from the rendered body and subject, sent from the
 * support address (the recipient's own when the case has none), and frees
 * v->subject, body and subject. */
static void
ack_staff_outbox(const struct ack_ctx *a, const struct case_rec *c, const char *kind, const char *recipient,
    const char *tag, const struct compose_header *extra, size_t extra_count,
    struct ack_vars *v, struct buf *body, struct buf *subject, time_t now,
    struct outbox_rec *o)
{
	struct letter l = {
		.kind = kind, .case_id = c->id, .tag = tag,
		.from = c->support_address[0] ? c->support_address : recipient, .from_name = "helpgate",
		.to = recipient, .subject = buf_str(subject), .text = buf_str(body),
		.automatic = LETTER_AUTO_GENERATED, .extra = extra, .extra_count = extra_count,
		.seal = a->have_seal ? &a->seal : NULL,
	};
	letter_outbox(&l, now, o);
	free(v->subject);
	buf_free(body);
	buf_free(subject);
}

int
ack_notice(struct ack_ctx *a, const struct case_rec *c, const struct ack_notice_spec *n,
    time_t now, struct outbox_rec *o, char *err, size_t errlen)
{
	struct ack_vars v;
	struct buf body, subject;
	char due[64], urgency[4];

	ack_vars_init(&v, a, c, now);
	clock_format_rfc5322((time_t)(n->deadline ? n->deadline : c->first_due), due, sizeof(due));
	snprintf(v.due_local, sizeof(v.due_local), "%s", due);
	v.event = n->event;
	buf_init(&body, 256 * 1024);
	if (ack_render(a, n->template_kind, "en", &v, &body, err, errlen) != 0) {
		free(v.subject);
		buf_free(&body);
		return -1;
	}
	buf_init(&subject, 4096);
	buf_printf(&subject, "[HG-%lld] %s: P%d %s (%s) %s", c->id, n->headline, c->urgency,
	    c->category, c->tier, v.subject);
	snprintf(urgency, sizeof(urgency), "P%d", c->urgency);
	struct compose_header extra[] = {
		{ "X-Helpgate-Case", v.case_name },
		{ "X-Helpgate-Urgency", urgency },
		{ "X-Helpgate-Notice", n->tag },
		{ "Importance", c->urgency <= 2 ? "high" : "normal" },
	};
	ack_staff_outbox(a, c, "notice", n->recipient, n->tag, extra,
	    sizeof(extra) / sizeof(extra[0]), &v, &body, &subject, now, o);
	return 0;
}

/* How a new P1 case is paged.  Anyone can send mail that reads as an
 * outage, so pages are capped per client domain and in all per hour; the
 * first case over a cap sends one "flood" notice saying that paging is
 * paused, and the rest are only in the queue (helpgatectl sla). */
enum ack_p1_page { ACK_P1_PAGE, ACK_P1_FLOOD, ACK_P1_FOLDED };

static enum store_rc
ack_p1_budget(const struct ack_ctx *a, struct store *s, const struct case_rec *c, time_t now,
    enum ack_p1_page *page, char *scope, size_t scopelen)
{
	const char *at = strrchr(c->client, '@');
	const char *domain = at ? at + 1 : c->client;
	int n_domain = 0, n_all = 0, floods = 0;
	enum store_rc rc;

	*page = ACK_P1_PAGE;
	if ((rc = store_outbox_count_domain_notices(s, "hg-%.p1.%", domain, now - 3600,
	    &n_domain)) != STORE_OK ||
	    (rc = store_outbox_count_kind(s, "notice", "hg-%.p1.%", now - 3600, &n_all)) != STORE_OK)
		return rc;
	if (n_domain < a->cfg->p1_notice_per_domain && n_all < a->cfg->p1_notice_per_hour)
		return STORE_OK;
	if (n_domain >= a->cfg->p1_notice_per_domain) {
		snprintf(scope, scopelen, "from %.250s", domain);
		rc = store_outbox_count_domain_notices(s, "hg-%.p1-flood.%", domain, now - 3600, &floods);
	} else {
		snprintf(scope, scopelen, "in all");
		rc = store_outbox_count_kind(s, "notice", "hg-%.p1-flood.%", now - 3600, &floods);
	}
	*page = floods == 0 ? ACK_P1_FLOOD : ACK_P1_FOLDED;
	return rc;
}

/* A new P1 case: the escalation address hears of it at once, or of the
 * flood it is part of (ack_p1_budget). */
static int
ack_build_p1_notice(struct ack_ctx *a, const struct case_rec *c, enum ack_p1_page page,
    const char *scope, time_t now, struct outbox_rec *o, char *err, size_t errlen)
{
	char event[640];
	struct ack_notice_spec n = {
		.template_kind = "notice-p1", .tag = "p1", .headline = "new critical case",
		.recipient = a->cfg->escalation_address, .event = "A new critical case arrived.",
	};

	if (page == ACK_P1_FLOOD) {
		snprintf(event, sizeof(event), "More new critical cases arrived %s within the hour "
		    "than are paged one by one (P1NoticePerDomainPerHour %ld, P1NoticePerHour %ld): "
		    "this is the last page for them until an hour has passed; see helpgatectl sla.",
		    scope, a->cfg->p1_notice_per_domain, a->cfg->p1_notice_per_hour);
		n.template_kind = "notice-sla";	/* the one that says {{event}} */
		n.tag = "p1-flood";
		n.headline = "critical cases arriving faster than paged";
		n.event = event;
	}
	return ack_notice(a, c, &n, now, o, err, errlen);
}

struct ack_first {
	long long		 id;
	struct message_rec	*out;
};

static int
ack_find_message(const struct message_rec *m, void *arg)
{
	struct ack_first *f = arg;

	if (m->id != f->id)
		return 0;
	*f->out = *m;
	return 1;
}

struct ack_batch {
	struct message_rec	*items;
	size_t			 count;
	int			 limit;
};

static int
ack_collect(const struct message_rec *m, void *arg)
{
	struct ack_batch *b = arg;

	b->items = xrealloc(b->items, (b->count + 1) * sizeof(*b->items));
	b->items[b->count++] = *m;
	return 0;
}

struct ack_alt_find {
	struct ack_alternative	*alt;
	char			*host, *security;
	size_t			 hostlen, seclen;
};

static int
ack_alt_row(const struct diagnosis_rec *d, void *arg)
{
	struct ack_alt_find *f = arg;

	if (strcmp(d->client_note, "ack") != 0 || d->alt_host[0] == '\0')
		return 0;
	snprintf(f->host, f->hostlen, "%s", d->alt_host);
	snprintf(f->security, f->seclen, "%s", d->alt_security);
	f->alt->host = f->host;
	f->alt->port = d->alt_port;
	f->alt->security = f->security;
	return 1;
}

/* A working setting the diagnosis found before the acknowledgement was
 * decided (diagnose.c marks it client_note "ack"): the acknowledgement
 * carries it, and no follow-up is sent.  alt->host stays NULL if none. */
static enum store_rc
ack_pending_alternative(struct store *s, long long case_id, struct ack_alternative *alt,
    char *host, size_t hostlen, char *security, size_t seclen)
{
	struct ack_alt_find f = { alt, host, security, hostlen, seclen };

	alt->host = NULL;
	return store_diagnosis_list(s, case_id, ack_alt_row, &f);
}

enum store_rc
ack_record_sent(struct store *s, const struct case_rec *c, const char *message_id,
    const char *subject, time_t now)
{
	struct message_rec *out = xcalloc(1, sizeof(*out));
	enum store_rc rc;

	out->case_id = c->id;
	snprintf(out->message_id, sizeof(out->message_id), "%s", message_id);
	snprintf(out->direction, sizeof(out->direction), "out");
	snprintf(out->sender, sizeof(out->sender), "%s", c->support_address);
	out->received = now;
	snprintf(out->subject, sizeof(out->subject), "%s", subject);
	out->urgency = c->urgency;
	snprintf(out->ack, sizeof(out->ack), "n/a");
	rc = store_message_add(s, out);
	free(out);
	return rc;
}

/* One message, one transaction: the decision and its outbox rows commit
 * together or not at all. */
static enum store_rc
ack_decide(struct ack_ctx *a, struct store *s, const struct message_rec *m, time_t now)
{
	struct case_rec *c = xmalloc(sizeof(*c));
	struct outbox_rec o;
	char why[96] = "", decision[64], err[256] = "";
	const char *skip;
	enum store_rc rc;
	int notice = 0;

	memset(&o, 0, sizeof(o));
	if ((rc = store_begin(s)) != STORE_OK)
		goto out;
	if ((rc = store_case_get(s, m->case_id, c)) != STORE_OK)
		goto fail;
	skip = ack_skip_reason(a, s, m, c, now, why, sizeof(why), &rc);
	if (rc != STORE_OK)
		goto fail;
	/* A new P1 case pages someone whatever happens to the client's copy
	 * (a rate-limited or no-reply client still has an outage). */
	notice = c->urgency == 1 && a->cfg->escalation_address != NULL &&
	    strcmp(m->direction, "in") == 0 && m->auto_reason[0] == '\0' &&
	    (skip == NULL || strcmp(skip, "follow-up") != 0) && !c->first_response_at;

	if (skip == NULL) {
		struct ack_alternative alt;
		char alt_host[256], alt_security[16];

		memset(&alt, 0, sizeof(alt));
		if ((rc = ack_pending_alternative(s, c->id, &alt, alt_host, sizeof(alt_host),
		    alt_security, sizeof(alt_security))) != STORE_OK)
			goto fail;
		if (ack_build_reply(a, c, m, "ack", alt.host ? &alt : NULL, now, &o, err,
		    sizeof(err)) != 0) {
			log_warnx("HG-%lld: cannot render the acknowledgement: %s", c->id, err);
			snprintf(decision, sizeof(decision), "skip:template-error");
		} else {
			rc = store_outbox_add(s, &o);
			if (rc == STORE_EXISTS) {
				snprintf(decision, sizeof(decision), "skip:already-acknowledged");
			} else if (rc != STORE_OK) {
				goto fail;
			} else {
				snprintf(decision, sizeof(decision), "queued");
				rc = ack_record_sent(s, c, o.message_id, "acknowledgement", now);
				if (rc != STORE_OK && rc != STORE_EXISTS)
					goto fail;
			}
		}
	} else {
		snprintf(decision, sizeof(decision), "skip:%s", skip);
	}
	outbox_rec_clear(&o);

	/* The case's SLA timers, created once, with its first decision. */
	if (strcmp(m->direction, "in") == 0 && m->auto_reason[0] == '\0' &&
	    (skip == NULL || strcmp(skip, "follow-up") != 0) &&
	    (rc = timers_schedule(a, s, c, now)) != STORE_OK)
		goto fail;
	if (notice) {
		enum ack_p1_page page;
		char scope[300] = "";

		if ((rc = ack_p1_budget(a, s, c, now, &page, scope, sizeof(scope))) != STORE_OK)
			goto fail;
		if (page == ACK_P1_FOLDED) {
			notice = 0;
			log_info("HG-%lld: P1 notice folded: paging is paused for cases %s", c->id, scope);
		} else if (ack_build_p1_notice(a, c, page, scope, now, &o, err, sizeof(err)) != 0) {
			log_warnx("HG-%lld: cannot render the P1 notice: %s", c->id, err);
		} else if ((rc = store_outbox_add(s, &o)) != STORE_OK && rc != STORE_EXISTS) {
			goto fail;
		}
		outbox_rec_clear(&o);
	}
	if ((rc = store_message_set_ack(s, m->id, decision)) == STORE_NOTFOUND) {
		/* Decided meanwhile by someone else: our rows go with the rollback. */
		store_rollback(s);
		rc = STORE_OK;
		goto out;
	}
	if (rc != STORE_OK)
		goto fail;
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;
	log_info("HG-%lld: acknowledgement %s to <%s>%s", c->id, decision, c->client,
	    notice ? "; P1 notice queued" : "");
	goto out;
fail:
	outbox_rec_clear(&o);
	store_rollback(s);
out:
	free(c);
	return rc;
}

int
ack_run(struct ack_ctx *a, struct store *s, time_t now, int limit)
{
	struct ack_batch batch = { NULL, 0, limit };
	enum store_rc rc;
	int done = 0;

	rc = store_message_undecided(s, limit, ack_collect, &batch);
	if (rc != STORE_OK) {
		if (rc != STORE_BUSY)
			log_warnx("reading new messages: %s: %s", store_strerror(rc), store_errmsg(s));
		free(batch.items);
		return -1;
	}
	for (size_t i = 0; i < batch.count; i++) {
		rc = ack_decide(a, s, &batch.items[i], now);
		if (rc != STORE_OK) {
			if (rc != STORE_BUSY)
				log_warnx("HG-%lld: deciding the acknowledgement: %s: %s",
				    batch.items[i].case_id, store_strerror(rc), store_errmsg(s));
			break;
		}
		done++;
	}
	free(batch.items);
	return rc == STORE_OK ? done : (done ? done : -1);
}

int
ack_check_templates(struct ack_ctx *a, char *err, size_t errlen)
{
	struct case_rec c;
	struct ack_vars v;
	struct buf out;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	c.id = 1;
	c.urgency = 1;
	c.first_due = 3600;
	snprintf(c.subject, sizeof(c.subject), "sample");
	ack_vars_init(&v, a, &c, 0);
	buf_init(&out, 1024 * 1024);
	for (size_t i = 0; i < a->file_count && rc == 0; i++) {
		char e[200];
		buf_reset(&out);
		if (template_render(a->files[i].text, ack_lookup, &v, &out, e, sizeof(e)) != 0) {
			snprintf(err, errlen, "%s/%s: %s", a->cfg->templates_dir, a->files[i].name, e);
			rc = -1;
		}
	}
	free(v.subject);
	buf_free(&out);
	return rc;
}

const struct config *
ack_config(const struct ack_ctx *a)
{
	return a->cfg;
}

int
ack_close_loop(struct ack_ctx *a, struct store *s, const struct case_rec *c, time_t now,
    char *err, size_t errlen)
{
	struct message_rec *m = xcalloc(1, sizeof(*m));
	struct outbox_rec o;
	long long first = 0;
	enum store_rc rc;

	memset(&o, 0, sizeof(o));
	/* Nobody to ask: the same rules as for the acknowledgement. */
	if (strchr(c->client, '@') == NULL || config_is_support_address(a->cfg, c->client) ||
	    config_is_staff(a->cfg, c->client) || ack_no_reply(a, c->client)) {
		free(m);
		return 0;
	}
	/* The reply goes into the thread the client started. */
	if (store_case_first_message(s, c->id, &first) == STORE_OK) {
		struct ack_first fm = { first, m };
		store_message_list(s, c->id, ack_find_message, &fm);
	}
	/* a From nobody vouched for is not mailed automatically (authres.h) */
	if (strncmp(m->sender_auth, "unverified:", 11) == 0) {
		log_info("HG-%lld: no close-the-loop message: the client's From was not verified (%s)",
		    c->id, m->sender_auth + 11);
		free(m);
		return 0;
	}
	if (ack_build_reply(a, c, m, "close", NULL, now, &o, err, errlen) != 0) {
		free(m);
		return -1;
	}
	rc = store_outbox_add(s, &o);
	outbox_rec_clear(&o);
	free(m);
	if (rc != STORE_OK) {
		snprintf(err, errlen, "outbox: %s: %s", store_strerror(rc), store_errmsg(s));
		return -1;
	}
	return 0;
}

/* ---- the diagnosis (issue 5): the note to staff, the setting for the client ---- */

const char *
ack_nobody_to_answer(const struct ack_ctx *a, const char *address)
{
	const char *at = address ? strchr(address, '@') : NULL;

	if (at == NULL || at == address || at[1] == '\0')
		return "no-address";
	if (config_is_staff(a->cfg, address))
		return "staff";
	if (config_is_support_address(a->cfg, address))
		return "support-address";
	if (ack_no_reply(a, address))
		return "no-reply-sender";
	return NULL;
}

int
ack_diagnosis_note(struct ack_ctx *a, const struct case_rec *c, const struct ack_diagnosis *d,
    time_t now, struct outbox_rec *o, char *err, size_t errlen)
{
	struct ack_vars v;
	struct buf body, subject;
	char incident[32];

	ack_vars_init(&v, a, c, now);
	v.diag = d;
	buf_init(&body, 512 * 1024);
	if (ack_render(a, "notice-diagnosis", "en", &v, &body, err, errlen) != 0) {
		free(v.subject);
		buf_free(&body);
		return -1;
	}
	buf_init(&subject, 4096);
	/* U+2014 between verdict and target, as staff read it in a list */
	buf_printf(&subject, "[HG-%lld] Diagnosis: %s \xe2\x80\x94 %s", c->id, d->verdict,
	    d->target_short);
	if (d->incident_id)
		buf_printf(&subject, " (incident #%lld)", d->incident_id);
	snprintf(incident, sizeof(incident), "%lld", d->incident_id);
	struct compose_header extra[] = {
		{ "X-Helpgate-Case", v.case_name },
		{ "X-Helpgate-Notice", "diagnosis" },
		{ "X-Helpgate-Diagnosis", d->verdict },
		{ "X-Helpgate-Incident", incident },
	};
	ack_staff_outbox(a, c, "diagnosis", d->recipient, "diagnosis", extra,
	    sizeof(extra) / sizeof(extra[0]) - (d->incident_id ? 0 : 1), &v, &body, &subject,
	    now, o);
	return 0;
}

int
ack_alternative_followup(struct ack_ctx *a, const struct case_rec *c,
    const struct message_rec *first, const struct ack_alternative *alt, time_t now,
    struct outbox_rec *o, char *err, size_t errlen)
{
	return ack_build_reply(a, c, first, "alternative", alt, now, o, err, errlen);
}

int
ack_command_answer(struct ack_ctx *a, const struct case_rec *c, const struct mailcmd_rec *m,
    const char *answer, time_t now, struct outbox_rec *o, char *err, size_t errlen)
{
	struct case_rec none;
	struct ack_vars v;
	struct buf body, subject;
	char *clean;

	if (c == NULL) {
		/* no case: the answer still goes in the staff member's thread */
		memset(&none, 0, sizeof(none));
		snprintf(none.support_address, sizeof(none.support_address), "%s",
		    a->cfg->support_addresses.count ? a->cfg->support_addresses.items[0] : "");
		snprintf(none.subject, sizeof(none.subject), "%s", m->subject);
		snprintf(none.status, sizeof(none.status), "none");
		c = &none;
	}
	ack_vars_init(&v, a, c, now);
	if (c->id == 0)
		snprintf(v.case_name, sizeof(v.case_name), "none");
	v.event = answer;
	buf_init(&body, 256 * 1024);
	if (ack_render(a, "command-answer", "en", &v, &body, err, errlen) != 0) {
		free(v.subject);
		buf_free(&body);
		return -1;
	}
	buf_init(&subject, 4096);
	clean = compose_sanitize(m->subject);
	if (c->id > 0) {
		char *s = ack_subject(c->id, m->subject);

		buf_printf(&subject, "%s (commands)", s);
		free(s);
	} else
		buf_printf(&subject, "Re: %s (commands: no case)", clean);
	free(clean);
	struct compose_header extra[] = {
		{ "X-Helpgate-Case", c->id > 0 ? v.case_name : "none" },
		{ "X-Helpgate-Notice", "commands" },
	};
	struct letter l = {
		.kind = "command-answer", .case_id = c->id, .tag = "commands",
		.from = c->support_address[0] ? c->support_address : m->staff, .from_name = "helpgate",
		.to = m->staff, .subject = buf_str(&subject), .text = buf_str(&body),
		.in_reply_to = m->message_id, .references = m->message_id,
		.automatic = LETTER_AUTO_REPLY, .extra = extra, .extra_count = 2,
		.seal = a->have_seal ? &a->seal : NULL,
	};
	letter_outbox(&l, now, o);
	free(v.subject);
	buf_free(&body);
	buf_free(&subject);
	return 0;
}

const struct seal_key *
ack_seal_key(const struct ack_ctx *a)
{
	return a->have_seal ? &a->seal : NULL;
}
