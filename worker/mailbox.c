/*
 * mailbox - the worker reconciles the support mailbox (mailbox.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "intake.h"
#include "log.h"
#include "mailbox.h"
#include "msg.h"
#include "xalloc.h"

#define MAILBOX_HEADER_MAX	(256 * 1024)	/* header bytes read besides MaxBodyScan */
#define MAILBOX_LOG_SECONDS	60	/* an unreadable mailbox is reported this often */

/* When each unreadable mailbox was last reported (by spec), so that a
 * missing Maildir is one line a minute, not one a pass. */
static struct {
	char	spec[512];
	time_t	logged;
} mailbox_trouble[16];

static int
mailbox_may_log(const char *spec, time_t now)
{
	size_t i, free_slot = sizeof(mailbox_trouble) / sizeof(mailbox_trouble[0]);

	for (i = 0; i < sizeof(mailbox_trouble) / sizeof(mailbox_trouble[0]); i++) {
		if (strcmp(mailbox_trouble[i].spec, spec) == 0)
			break;
		if (mailbox_trouble[i].spec[0] == '\0' && free_slot > i)
			free_slot = i;
	}
	if (i == sizeof(mailbox_trouble) / sizeof(mailbox_trouble[0])) {
		if (free_slot == i)
			return 1;	/* more than 16 broken mailboxes: log them all */
		i = free_slot;
		snprintf(mailbox_trouble[i].spec, sizeof(mailbox_trouble[i].spec), "%s", spec);
	} else if (now - mailbox_trouble[i].logged < MAILBOX_LOG_SECONDS) {
		return 0;
	}
	mailbox_trouble[i].logged = now;
	return 1;
}

static void
mailbox_ok_again(const char *spec)
{
	for (size_t i = 0; i < sizeof(mailbox_trouble) / sizeof(mailbox_trouble[0]); i++) {
		if (strcmp(mailbox_trouble[i].spec, spec) == 0) {
			log_info("mailbox %s: readable again", spec);
			mailbox_trouble[i].spec[0] = '\0';
			mailbox_trouble[i].logged = 0;
		}
	}
}

time_t
mailbox_received_time(const char *value)
{
	const char *semi, *p;
	struct tm tm;
	char *end;

	if (value == NULL || (semi = strrchr(value, ';')) == NULL)
		return 0;
	p = semi + 1;
	while (isspace((unsigned char)*p))
		p++;
	if (isalpha((unsigned char)*p)) {	/* "Mon," */
		while (*p && *p != ',')
			p++;
		if (*p == ',')
			p++;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(p, " %d %b %Y %H:%M:%S %z", &tm);
	if (end == NULL)
		return 0;
	long gmtoff = tm.tm_gmtoff;
	time_t t = timegm(&tm);

	return t == (time_t)-1 ? 0 : t - gmtoff;
}

/* The queue id the receiving MTA gave in its Received header ("... with
 * ESMTP id 4Ab1C2; date"): Postfix and Sendmail both write it so. */
static void
mailbox_queue_id(const char *received, char *out, size_t outlen)
{
	const char *p = received, *q;
	size_t n = 0;

	out[0] = '\0';
	while (p != NULL && (p = strstr(p, " id ")) != NULL) {
		p += 4;
		while (*p == ' ')
			p++;
		for (q = p; *q && !isspace((unsigned char)*q) && *q != ';'; q++)
			n++;
		if (n > 0 && n < outlen) {
			memcpy(out, p, n);
			out[n] = '\0';
			return;
		}
		n = 0;
	}
}

/* The support address the message was delivered for: the first support
 * address in Delivered-To, X-Original-To, To or Cc, else the first
 * SupportAddress. */
static void
mailbox_support_address(const struct config *cfg, const struct msg *m, char *out, size_t outlen)
{
	static const char *const names[] = { "Delivered-To", "X-Original-To", "To", "Cc" };

	for (size_t h = 0; h < sizeof(names) / sizeof(names[0]); h++) {
		const char *v = msg_header_raw(m, names[h]);
		char *copy, *tok, *save = NULL;

		if (v == NULL)
			continue;
		copy = xstrdup(v);
		for (tok = strtok_r(copy, ",;<> \t\r\n\"()", &save); tok != NULL;
		    tok = strtok_r(NULL, ",;<> \t\r\n\"()", &save)) {
			if (strchr(tok, '@') != NULL && config_is_support_address(cfg, tok)) {
				snprintf(out, outlen, "%s", tok);
				config_normalize_address(out);
				free(copy);
				return;
			}
		}
		free(copy);
	}
	snprintf(out, outlen, "%s", cfg->support_addresses.count ? cfg->support_addresses.items[0] : "");
}

/* Reads the first max bytes of path; NULL with errno set. */
static char *
mailbox_read(const char *path, size_t max, size_t *len, int *truncated, time_t *mtime)
{
	struct stat sb;
	size_t got = 0;
	char *data;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	data = xmalloc(max + 1);
	while (got < max) {
		ssize_t n = read(fd, data + got, max - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			close(fd);
			free(data);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	*len = got;
	*truncated = (off_t)got < sb.st_size;
	*mtime = sb.st_mtime;
	return data;
}

struct mailbox_pass {
	const struct config		*cfg;
	const struct classify_rules	*rules;
	const struct ack_ctx		*ack;
	struct store			*store;
	time_t				 now;
	struct intake_result		*res;
	int				 recorded;
};

/* One message file.  0 done (recorded, skipped, or unreadable and left for
 * the next pass), -1 the store failed. */
static int
mailbox_message(struct mailbox_pass *mp, const char *spec, const char *path, const char *key)
{
	const struct config *cfg = mp->cfg;
	char support[320], queue_id[32], from[320], case_name[32] = "-";
	struct intake_input in;
	struct msg *m;
	long long case_id;
	size_t len = 0;
	int truncated = 0;
	time_t mtime = 0;
	enum store_rc rc;
	const char *v;
	char *data;

	data = mailbox_read(path, MAILBOX_HEADER_MAX + cfg->max_body_scan, &len, &truncated, &mtime);
	if (data == NULL) {
		if (errno != ENOENT)	/* ENOENT: moved to cur/ meanwhile; read there next pass */
			log_warn("mailbox %s: %s", spec, path);
		return 0;
	}
	m = msg_parse(data, len, cfg->max_body_scan);
	if (truncated)
		m->flags |= MSG_TRUNCATED;

	/* Recorded by the milter (or by an earlier pass that died before it
	 * marked the file), or one of helpgate's own letters. */
	rc = store_message_case(mp->store, m->message_id, &case_id);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		goto fail;
	if (rc == STORE_OK ||
	    ack_seal_valid(mp->ack, msg_header_raw(m, "X-Helpgate-Seal"), m->message_id)) {
		if (store_mailbox_mark(mp->store, spec, key, mp->now) != STORE_OK)
			goto fail;
		log_debug("mailbox %s: %s: %s", spec, key,
		    rc == STORE_OK ? "recorded already" : "helpgate's own letter");
		goto done;
	}

	memset(&in, 0, sizeof(in));
	v = msg_header_raw(m, "Received");
	mailbox_queue_id(v, queue_id, sizeof(queue_id));
	mailbox_support_address(cfg, m, support, sizeof(support));
	/* The envelope sender as the delivery agent recorded it; without one
	 * none is claimed (AckPolicy then has nothing to align the From with). */
	from[0] = '\0';
	if ((v = msg_header_raw(m, "Return-Path")) != NULL) {
		while (*v == ' ' || *v == '\t' || *v == '<')
			v++;
		snprintf(from, sizeof(from), "%.*s", (int)strcspn(v, "> \t\r\n"), v);
	}
	in.cfg = cfg;
	in.rules = mp->rules;
	in.store = mp->store;
	in.msg = m;
	in.envelope_from = from;
	in.support_address = support;
	in.queue_id = queue_id;
	in.received = mailbox_received_time(msg_header_raw(m, "Received"));
	if (in.received == 0)
		in.received = mtime;
	in.via = "mailbox";
	if (mp->res == NULL)
		mp->res = xcalloc(1, sizeof(*mp->res));
	intake_process(&in, mp->res);
	if (mp->res->disposition == INTAKE_DEGRADED)
		goto fail;
	if (store_mailbox_mark(mp->store, spec, key, mp->now) != STORE_OK)
		goto fail;
	if (mp->res->case_id > 0)
		snprintf(case_name, sizeof(case_name), "HG-%lld", mp->res->case_id);
	log_info("%s: case=%s %s from the mailbox (the milter did not see it) urgency=%s "
	    "category=%s %s from=<%s> mailbox=%s file=%s", *queue_id ? queue_id : "NOQUEUE",
	    case_name,
	    mp->res->disposition == INTAKE_NEW_CASE ? "opened" : "recorded",
	    classify_urgency_name(mp->res->cls.urgency), mp->res->cls.category,
	    intake_disposition_name(mp->res->disposition), mp->res->client, spec, key);
	if (mp->res->disposition == INTAKE_NEW_CASE || mp->res->disposition == INTAKE_FOLLOW_UP)
		mp->recorded++;
done:
	msg_free(m);
	free(data);
	return 0;
fail:
	msg_free(m);
	free(data);
	return -1;
}

/* One Maildir: new/ then cur/.  0, or -1 when the store failed. */
static int
mailbox_maildir(struct mailbox_pass *mp, const char *spec, volatile sig_atomic_t *stop)
{
	static const char *const subdirs[] = { "new", "cur" };
	const char *base = spec + strlen("maildir:");
	int readable = 0;

	for (size_t d = 0; d < 2; d++) {
		char dir[4096];
		struct dirent **names = NULL;
		int n, failed = 0;

		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", base, subdirs[d]) >= sizeof(dir))
			return 0;
		/* in name order: Maildir names start with the delivery time */
		if ((n = scandir(dir, &names, NULL, alphasort)) < 0) {
			if (mailbox_may_log(spec, mp->now))
				log_warn("mailbox %s: cannot read %s (retried every MailboxPoll; "
				    "logged once a minute)", spec, dir);
			continue;
		}
		readable++;
		for (int i = 0; i < n; i++) {
			char path[4096 + 256], key[256];
			const char *name = names[i]->d_name;
			enum store_rc rc;

			if (failed || *stop || name[0] == '.' ||
			    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
				free(names[i]);
				continue;
			}
			/* the unique part: a reader renames new/X to cur/X:2,FLAGS */
			snprintf(key, sizeof(key), "%.*s", (int)strcspn(name, ":"), name);
			rc = store_mailbox_seen(mp->store, spec, key);
			if (rc == STORE_NOTFOUND)
				failed = mailbox_message(mp, spec, path, key) != 0;
			else if (rc != STORE_OK)
				failed = 1;
			free(names[i]);
		}
		free(names);
		if (failed)
			return -1;
	}
	if (readable == 2)
		mailbox_ok_again(spec);
	return 0;
}

int
mailbox_run(const struct config *cfg, const struct classify_rules *rules,
    const struct ack_ctx *ack, struct store *store, time_t now, volatile sig_atomic_t *stop)
{
	struct mailbox_pass mp = { cfg, rules, ack, store, now, NULL, 0 };
	int failed = 0;

	for (size_t i = 0; i < cfg->mailboxes.count && !failed && !*stop; i++) {
		const char *spec = cfg->mailboxes.items[i];

		if (strncmp(spec, "maildir:", 8) == 0)
			failed = mailbox_maildir(&mp, spec, stop) != 0;
	}
	free(mp.res);
	return failed ? -1 : mp.recorded;
}
