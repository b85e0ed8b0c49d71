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

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <libetpan/libetpan.h>

#include "intake.h"
#include "log.h"
#include "mailbox.h"
#include "msg.h"
#include "xalloc.h"

#define MAILBOX_HEADER_MAX	(256 * 1024)	/* header bytes read besides MaxBodyScan */
#define MAILBOX_LOG_SECONDS	60	/* an unreadable mailbox is reported this often */
#define MAILBOX_CLOCK_SKEW	300	/* a Received date may be this much after delivery */

#define MAILBOX_STATES		16	/* mailboxes remembered between passes */

/* What the worker knows of each mailbox between passes, by spec (lost on
 * restart: the store's mailbox_seen is the truth, this saves work). */
static struct mailbox_state {
	char		spec[512];
	time_t		logged;		/* trouble last reported; 0: none now */
	/* Maildir: the mtimes of new/ and cur/ when a complete pass read them
	 * (dir_valid), so that an unchanged directory is not listed again */
	struct timespec	dir_mtime[2];
	int		dir_valid[2];
	/* IMAP: the folder's UIDVALIDITY and the last UID read in it */
	unsigned long	uidvalidity;
	unsigned long	last_uid;
} mailbox_states[MAILBOX_STATES];

/* The state of spec, made when new; NULL past MAILBOX_STATES mailboxes
 * (they then work without: every pass lists, logs, asks the store). */
static struct mailbox_state *
mailbox_state(const char *spec)
{
	struct mailbox_state *free_slot = NULL;

	for (size_t i = 0; i < MAILBOX_STATES; i++) {
		if (strcmp(mailbox_states[i].spec, spec) == 0)
			return &mailbox_states[i];
		if (mailbox_states[i].spec[0] == '\0' && free_slot == NULL)
			free_slot = &mailbox_states[i];
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		snprintf(free_slot->spec, sizeof(free_slot->spec), "%s", spec);
	}
	return free_slot;
}

/* Trouble with a mailbox is reported at most once a minute. */
static int
mailbox_may_log(const char *spec, time_t now)
{
	struct mailbox_state *st = mailbox_state(spec);

	if (st == NULL)
		return 1;
	if (st->logged != 0 && now - st->logged < MAILBOX_LOG_SECONDS)
		return 0;
	st->logged = now;
	return 1;
}

static void
mailbox_ok_again(const char *spec)
{
	struct mailbox_state *st = mailbox_state(spec);

	if (st != NULL && st->logged != 0) {
		log_info("mailbox %s: readable again", spec);
		st->logged = 0;
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
	int				 unread;	/* a file could not be read */
	long long			 case_id;	/* the last message's case, 0: none */
	int				 too_old;	/* left alone: older than MailboxMaxAge */
};

/* One message, its first len bytes in data (truncated: there was more).
 * 0 done (recorded or skipped), -1 the store failed (not marked: read again
 * on the next pass). */
static int
mailbox_record(struct mailbox_pass *mp, const char *spec, const char *key, const char *data,
    size_t len, int truncated, time_t fallback_time)
{
	const struct config *cfg = mp->cfg;
	char support[320], queue_id[32], from[320], case_name[32] = "-";
	struct intake_input in;
	struct msg *m;
	long long case_id;
	enum store_rc rc;
	const char *v;

	mp->case_id = 0;
	m = msg_parse(data, len, cfg->max_body_scan);
	if (truncated)
		m->flags |= MSG_TRUNCATED;

	/* Recorded by the milter (or by an earlier pass that died before it
	 * marked the file), or one of helpgate's own letters. */
	rc = store_message_case(mp->store, m->message_id, &case_id);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		goto fail;
	if (rc == STORE_OK ||
	    ack_seal_valid(mp->ack, m)) {
		if (store_mailbox_mark(mp->store, spec, key, mp->now) != STORE_OK)
			goto fail;
		log_debug("mailbox %s: %s: %s", spec, key,
		    rc == STORE_OK ? "recorded already" : "helpgate's own letter");
		if (rc == STORE_OK)
			mp->case_id = case_id;
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
	/* none, or later than the delivery (a forged or wrong clock): the
	 * delivery time */
	if (in.received == 0 || in.received > fallback_time + MAILBOX_CLOCK_SKEW)
		in.received = fallback_time;
	/* Older than MailboxMaxAge: history (a mailbox newly given to the
	 * worker holds years of it), not a case lost a moment ago. */
	if (mp->now - in.received > cfg->mailbox_max_age) {
		if (store_mailbox_mark(mp->store, spec, key, mp->now) != STORE_OK)
			goto fail;
		mp->too_old++;
		goto done;
	}
	in.via = "mailbox";
	if (mp->res == NULL)
		mp->res = xcalloc(1, sizeof(*mp->res));
	intake_process(&in, mp->res);
	if (mp->res->disposition == INTAKE_DEGRADED)
		goto fail;
	if (store_mailbox_mark(mp->store, spec, key, mp->now) != STORE_OK)
		goto fail;
	mp->case_id = mp->res->case_id;
	if (mp->res->case_id > 0)
		snprintf(case_name, sizeof(case_name), "HG-%lld", mp->res->case_id);
	if (mp->res->disposition == INTAKE_NEW_CASE || mp->res->disposition == INTAKE_FOLLOW_UP) {
		log_info("%s: case=%s %s from the mailbox (the milter did not see it) urgency=%s "
		    "category=%s %s from=<%s> mailbox=%s key=%s", *queue_id ? queue_id : "NOQUEUE",
		    case_name,
		    mp->res->disposition == INTAKE_NEW_CASE ? "opened" : "recorded",
		    classify_urgency_name(mp->res->cls.urgency), mp->res->cls.category,
		    intake_disposition_name(mp->res->disposition), mp->res->client, spec, key);
		mp->recorded++;
	} else {
		/* Machine mail that threads nowhere is never stored, so the
		 * milter may well have seen it: no gap to report. */
		log_debug("%s: mailbox %s: %s: %s from=<%s>", *queue_id ? queue_id : "NOQUEUE",
		    spec, key, intake_disposition_name(mp->res->disposition), mp->res->client);
	}
done:
	msg_free(m);
	return 0;
fail:
	msg_free(m);
	return -1;
}

/* One Maildir file. */
static int
mailbox_file(struct mailbox_pass *mp, const char *spec, const char *path, const char *key)
{
	size_t len = 0;
	int truncated = 0, ret;
	time_t mtime = 0;
	char *data;

	data = mailbox_read(path, MAILBOX_HEADER_MAX + mp->cfg->max_body_scan, &len, &truncated, &mtime);
	if (data == NULL) {
		if (errno != ENOENT) {	/* ENOENT: moved to cur/ meanwhile; read there next pass */
			log_warn("mailbox %s: %s", spec, path);
			mp->unread = 1;
		}
		return 0;
	}
	ret = mailbox_record(mp, spec, key, data, len, truncated, mtime);
	free(data);
	return ret;
}

/* One Maildir: new/ then cur/.  0, or -1 when the store failed. */
static int
mailbox_maildir(struct mailbox_pass *mp, const char *spec, volatile sig_atomic_t *stop)
{
	static const char *const subdirs[] = { "new", "cur" };
	const char *base = spec + strlen("maildir:");
	struct mailbox_state *st = mailbox_state(spec);
	int readable = 0;

	for (size_t d = 0; d < 2; d++) {
		char dir[4096];
		struct dirent **names = NULL;
		struct stat sb;
		int n, failed = 0, have_mtime;

		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", base, subdirs[d]) >= sizeof(dir))
			return 0;
		/* A directory whose mtime is what it was at the end of a
		 * complete pass has no new file: nothing to list. */
		have_mtime = stat(dir, &sb) == 0;
		if (have_mtime && st != NULL && st->dir_valid[d] &&
		    sb.st_mtim.tv_sec == st->dir_mtime[d].tv_sec &&
		    sb.st_mtim.tv_nsec == st->dir_mtime[d].tv_nsec) {
			readable++;
			continue;
		}
		if (st != NULL)
			st->dir_valid[d] = 0;
		mp->unread = 0;
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
				failed = mailbox_file(mp, spec, path, key) != 0;
			else if (rc != STORE_OK)
				failed = 1;
			free(names[i]);
		}
		free(names);
		if (failed)
			return -1;
		/* Trusted next time only when the mtime is older than this pass
		 * by more than a clock tick: a file added in the same tick as
		 * the listing would leave it unchanged. */
		if (st != NULL && have_mtime && !*stop && !mp->unread &&
		    sb.st_mtim.tv_sec < mp->now - 1) {
			st->dir_mtime[d] = sb.st_mtim;
			st->dir_valid[d] = 1;
		}
	}
	if (readable == 2)
		mailbox_ok_again(spec);
	return 0;
}

/* ---- IMAP (libetpan): read-only, only new UIDs each pass ---- */

#define IMAP_TIMEOUT_SECONDS	10	/* each network step; the pass runs on the worker's loop */

struct imap_url {
	int	tls;		/* imaps:// */
	char	user[320];
	char	host[256];
	uint16_t port;
	char	folder[512];
};

static int
imap_parse_url(const char *spec, struct imap_url *u)
{
	const char *auth, *slash, *at, *colon;
	size_t hostlen;

	memset(u, 0, sizeof(*u));
	u->tls = strncmp(spec, "imaps://", 8) == 0;
	auth = spec + (u->tls ? 8 : 7);
	if ((slash = strchr(auth, '/')) == NULL ||
	    (at = memrchr(auth, '@', (size_t)(slash - auth))) == NULL)
		return -1;
	snprintf(u->user, sizeof(u->user), "%.*s", (int)(at - auth), auth);
	colon = memchr(at + 1, ':', (size_t)(slash - at - 1));
	hostlen = (size_t)((colon ? colon : slash) - (at + 1));
	if (hostlen == 0 || hostlen >= sizeof(u->host))
		return -1;
	memcpy(u->host, at + 1, hostlen);
	u->host[hostlen] = '\0';
	u->port = u->tls ? 993 : 143;
	if (colon != NULL) {
		long p = strtol(colon + 1, NULL, 10);
		if (p <= 0 || p > 65535)
			return -1;
		u->port = (uint16_t)p;
	}
	snprintf(u->folder, sizeof(u->folder), "%s", slash + 1);
	return u->folder[0] ? 0 : -1;
}

/* The first line of MailboxPasswordFile, which must be the worker's alone. */
static int
imap_password(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	struct stat sb;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "MailboxPasswordFile %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
		close(fd);
		snprintf(err, errlen, "MailboxPasswordFile %s: not a file of mode 0600", path);
		return -1;
	}
	n = read(fd, out, outlen - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "MailboxPasswordFile %s: empty", path);
		return -1;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static void
imap_tls_setup(struct mailstream_ssl_context *ctx, void *data)
{
	mailstream_ssl_set_server_name(ctx, data);	/* SNI */
}

/* The server's chain against the system's CAs (and MailboxCAFile), for
 * the host named in the URL.  Before LOGIN: no password to a stranger. */
static int
imap_verify(mailimap *imap, const struct config *cfg, const char *host, char *err, size_t errlen)
{
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t *crts = NULL;
	carray *chain;
	unsigned status = 0, n, got = 0;
	int ret = -1;

	if ((chain = mailstream_get_certificate_chain(imap->imap_stream)) == NULL ||
	    (n = carray_count(chain)) == 0) {
		snprintf(err, errlen, "no certificate from the server");
		goto out;
	}
	crts = xcalloc(n, sizeof(*crts));
	for (got = 0; got < n; got++) {
		MMAPString *der = carray_get(chain, got);
		gnutls_datum_t d = { (unsigned char *)der->str, (unsigned)der->len };

		if (gnutls_x509_crt_init(&crts[got]) != 0)
			break;
		if (gnutls_x509_crt_import(crts[got], &d, GNUTLS_X509_FMT_DER) != 0) {
			gnutls_x509_crt_deinit(crts[got]);
			break;
		}
	}
	if (got == 0 || gnutls_x509_trust_list_init(&tl, 0) != 0) {
		snprintf(err, errlen, "the server's certificate does not parse");
		goto out;
	}
	(void)gnutls_x509_trust_list_add_system_trust(tl, 0, 0);
	if (cfg->mailbox_ca_file != NULL &&
	    gnutls_x509_trust_list_add_trust_file(tl, cfg->mailbox_ca_file, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0) <= 0) {
		snprintf(err, errlen, "MailboxCAFile %s: no certificate read", cfg->mailbox_ca_file);
		goto out;
	}
	gnutls_typed_vdata_st vd = { GNUTLS_DT_DNS_HOSTNAME, (unsigned char *)host, 0 };
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, got, &vd, 1, 0, &status, NULL) != 0 ||
	    status != 0) {
		gnutls_datum_t why = { NULL, 0 };

		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0) {
			snprintf(err, errlen, "certificate of %s: %s", host, why.data);
			gnutls_free(why.data);
		} else {
			snprintf(err, errlen, "certificate of %s does not verify", host);
		}
		goto out;
	}
	ret = 0;
out:
	for (unsigned i = 0; i < got; i++)
		gnutls_x509_crt_deinit(crts[i]);
	free(crts);
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	if (chain != NULL)
		mailstream_certificate_chain_free(chain);
	return ret;
}

static void
imap_why(mailimap *imap, const char *what, int r, char *err, size_t errlen)
{
	const char *text = imap != NULL && imap->imap_response != NULL ? imap->imap_response : "";

	if (r == MAILIMAP_ERROR_CONNECTION_REFUSED)
		snprintf(err, errlen, "%s: connection refused", what);
	else if (r == MAILIMAP_ERROR_STREAM)
		snprintf(err, errlen, "%s: the connection broke", what);
	else
		snprintf(err, errlen, "%s failed (libetpan error %d)%s%.200s", what, r,
		    *text ? ": " : "", text);
}

/* The new UIDs above after, ascending (at most max).  0, or -1 with err. */
static int
imap_new_uids(mailimap *imap, unsigned long after, uint32_t *uids, size_t max, size_t *count,
    char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *result = NULL;
	clistiter *it;
	int r;

	*count = 0;
	ft = mailimap_fetch_type_new_fetch_att(mailimap_fetch_att_new_uid());
	set = mailimap_set_new_interval((uint32_t)after + 1, 0);	/* after+1:* */
	r = mailimap_uid_fetch(imap, set, ft, &result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(imap, "UID FETCH", r, err, errlen);
		return -1;
	}
	for (it = clist_begin(result); it != NULL && *count < max; it = clist_next(it)) {
		struct mailimap_msg_att *ma = clist_content(it);
		uint32_t uid = 0;

		for (clistiter *a = clist_begin(ma->att_list); a != NULL; a = clist_next(a)) {
			struct mailimap_msg_att_item *item = clist_content(a);

			if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
			    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
				uid = item->att_data.att_static->att_data.att_uid;
		}
		/* "n:*" names the last message even when its UID is below n */
		if (uid > after)
			uids[(*count)++] = uid;
	}
	mailimap_fetch_list_free(result);
	return 0;
}

/* The header and the first MaxBodyScan bytes of the text of one UID, as
 * one buffer (heap).  NULL with err; *gone when the message is gone. */
static char *
imap_fetch_message(mailimap *imap, uint32_t uid, size_t max_text, size_t *len, int *truncated,
    int *gone, char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *result = NULL;
	const char *hdr = NULL, *text = NULL;
	size_t hdr_len = 0, text_len = 0;
	char *out = NULL;
	int r;

	*gone = 0;
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(mailimap_section_new_header()));
	/* one byte more than is read, to know whether there was more */
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section_partial(mailimap_section_new_text(), 0,
	    (uint32_t)max_text + 1));
	set = mailimap_set_new_single(uid);
	r = mailimap_uid_fetch(imap, set, ft, &result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(imap, "UID FETCH BODY.PEEK", r, err, errlen);
		return NULL;
	}
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att *ma = clist_content(it);

		for (clistiter *a = clist_begin(ma->att_list); a != NULL; a = clist_next(a)) {
			struct mailimap_msg_att_item *item = clist_content(a);
			struct mailimap_msg_att_body_section *bs;
			struct mailimap_section_spec *spec;

			if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
			    item->att_data.att_static->att_type != MAILIMAP_MSG_ATT_BODY_SECTION)
				continue;
			bs = item->att_data.att_static->att_data.att_body_section;
			spec = bs->sec_section != NULL ? bs->sec_section->sec_spec : NULL;
			if (spec == NULL || spec->sec_type != MAILIMAP_SECTION_SPEC_SECTION_MSGTEXT ||
			    spec->sec_data.sec_msgtext == NULL || bs->sec_body_part == NULL)
				continue;
			if (spec->sec_data.sec_msgtext->sec_type == MAILIMAP_SECTION_MSGTEXT_HEADER) {
				hdr = bs->sec_body_part;
				hdr_len = bs->sec_length;
			} else if (spec->sec_data.sec_msgtext->sec_type == MAILIMAP_SECTION_MSGTEXT_TEXT) {
				text = bs->sec_body_part;
				text_len = bs->sec_length;
			}
		}
	}
	if (hdr == NULL) {
		*gone = 1;	/* expunged between the two fetches */
		snprintf(err, errlen, "UID %u: gone", uid);
	} else {
		if (hdr_len > MAILBOX_HEADER_MAX)
			hdr_len = MAILBOX_HEADER_MAX;
		*truncated = text_len > max_text;
		if (text_len > max_text)
			text_len = max_text;
		out = xmalloc(hdr_len + text_len + 1);
		memcpy(out, hdr, hdr_len);
		if (text != NULL)
			memcpy(out + hdr_len, text, text_len);
		else
			text_len = 0;
		*len = hdr_len + text_len;
		out[*len] = '\0';
	}
	mailimap_fetch_list_free(result);
	return out;
}

/* MailboxFlags: keywords HG-<n>, P<urgency> and the category on uid, so
 * that a mail client shows the case beside the message.  0, or -1 with err. */
static int
imap_set_keywords(mailimap *imap, struct store *store, uint32_t uid, long long case_id,
    char *err, size_t errlen)
{
	struct mailimap_flag_list *flags;
	struct mailimap_store_att_flags *att;
	struct mailimap_set *set;
	struct case_rec *c;
	char word[64];
	int r;

	c = xcalloc(1, sizeof(*c));
	if (store_case_get(store, case_id, c) != STORE_OK) {
		free(c);
		return 0;	/* the store's trouble shows elsewhere */
	}
	flags = mailimap_flag_list_new_empty();
	snprintf(word, sizeof(word), "HG-%lld", case_id);
	mailimap_flag_list_add(flags, mailimap_flag_new_flag_keyword(xstrdup(word)));
	snprintf(word, sizeof(word), "P%d", c->urgency);
	mailimap_flag_list_add(flags, mailimap_flag_new_flag_keyword(xstrdup(word)));
	/* an atom: categories are words and '-', but never trust it blindly */
	if (c->category[0] && strspn(c->category, "abcdefghijklmnopqrstuvwxyz0123456789-") ==
	    strlen(c->category))
		mailimap_flag_list_add(flags, mailimap_flag_new_flag_keyword(xstrdup(c->category)));
	free(c);
	att = mailimap_store_att_flags_new_add_flags_silent(flags);
	set = mailimap_set_new_single(uid);
	r = mailimap_uid_store(imap, set, att);
	mailimap_store_att_flags_free(att);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(imap, "UID STORE +FLAGS.SILENT", r, err, errlen);
		return -1;
	}
	return 0;
}

#define IMAP_BATCH	500	/* new UIDs handled per pass */

/* One IMAP folder.  0 (a server problem is logged and retried next poll),
 * or -1 when the store failed. */
static int
mailbox_imap(struct mailbox_pass *mp, const char *spec, volatile sig_atomic_t *stop)
{
	const struct config *cfg = mp->cfg;
	struct imap_url u;
	char password[512], err[512] = "";
	unsigned long uidvalidity, last = 0;
	uint32_t *uids = NULL;
	size_t count = 0;
	mailimap *imap = NULL;
	struct mailbox_state *st;
	char flag_err[256] = "";
	int r, ret = 0, server_ok = 0, flag_failures = 0;

	if (imap_parse_url(spec, &u) != 0) {
		snprintf(err, sizeof(err), "not imaps://USER@HOST[:PORT]/FOLDER");
		goto out;
	}
	if (imap_password(cfg->mailbox_password_file, password, sizeof(password),
	    err, sizeof(err)) != 0)
		goto out;
	imap = mailimap_new(0, NULL);
	mailimap_set_timeout(imap, IMAP_TIMEOUT_SECONDS);
	if (u.tls) {
		r = mailimap_ssl_connect_with_callback(imap, u.host, u.port, imap_tls_setup, u.host);
	} else {
		r = mailimap_socket_connect(imap, u.host, u.port);
		if (r == MAILIMAP_NO_ERROR || r == MAILIMAP_NO_ERROR_AUTHENTICATED ||
		    r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
			/* imap:// means STARTTLS, never a password in clear */
			r = mailimap_socket_starttls_with_callback(imap, imap_tls_setup, u.host);
			if (r != MAILIMAP_NO_ERROR) {
				imap_why(imap, "STARTTLS", r, err, sizeof(err));
				goto wipe;
			}
		}
	}
	if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		imap_why(imap, "connect", r, err, sizeof(err));
		goto wipe;
	}
	if (imap_verify(imap, cfg, u.host, err, sizeof(err)) != 0)
		goto wipe;
	r = mailimap_login(imap, u.user, password);
	explicit_bzero(password, sizeof(password));
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(imap, "LOGIN", r, err, sizeof(err));
		goto out;
	}
	/* EXAMINE: read-only, no \Seen set, nothing moved; SELECT only to
	 * set MailboxFlags keywords (still BODY.PEEK: nothing marked seen) */
	r = cfg->mailbox_flags ? mailimap_select(imap, u.folder) : mailimap_examine(imap, u.folder);
	if (r != MAILIMAP_NO_ERROR || imap->imap_selection_info == NULL) {
		imap_why(imap, cfg->mailbox_flags ? "SELECT" : "EXAMINE", r, err, sizeof(err));
		goto out;
	}
	uidvalidity = imap->imap_selection_info->sel_uidvalidity;
	st = mailbox_state(spec);
	if (st != NULL && st->uidvalidity == uidvalidity) {
		last = st->last_uid;
	} else {
		if (st != NULL && st->uidvalidity != 0)
			log_warnx("mailbox %s: UIDVALIDITY changed from %lu to %lu: the folder is "
			    "read again from the start (Message-IDs keep out duplicates)", spec,
			    st->uidvalidity, uidvalidity);
		if (store_mailbox_last_uid(mp->store, spec, uidvalidity, &last) != STORE_OK) {
			ret = -1;
			goto out;
		}
		if (st != NULL) {
			st->uidvalidity = uidvalidity;
			st->last_uid = last;
		}
	}
	uids = xcalloc(IMAP_BATCH, sizeof(*uids));
	if (imap_new_uids(imap, last, uids, IMAP_BATCH, &count, err, sizeof(err)) != 0)
		goto out;
	server_ok = 1;
	for (size_t i = 0; i < count && !*stop; i++) {
		char key[64], *data;
		size_t len = 0;
		int truncated = 0, gone = 0;
		enum store_rc rc;

		snprintf(key, sizeof(key), "%lu/%u", uidvalidity, uids[i]);
		rc = store_mailbox_seen(mp->store, spec, key);
		if (rc == STORE_NOTFOUND) {
			data = imap_fetch_message(imap, uids[i], cfg->max_body_scan, &len, &truncated,
			    &gone, err, sizeof(err));
			if (data == NULL && !gone) {
				server_ok = 0;
				break;
			}
			if (data != NULL) {
				if (mailbox_record(mp, spec, key, data, len, truncated, mp->now) != 0)
					rc = STORE_ERROR;
				else if (cfg->mailbox_flags && mp->case_id > 0 &&
				    imap_set_keywords(imap, mp->store, uids[i], mp->case_id,
				    flag_err, sizeof(flag_err)) != 0)
					flag_failures++;
				free(data);
			}
		}
		if (rc != STORE_OK && rc != STORE_NOTFOUND) {
			ret = -1;
			break;
		}
		if (st != NULL)
			st->last_uid = uids[i];
	}
	if (flag_failures > 0)	/* once a pass: the cases are recorded all the same */
		log_warnx("mailbox %s: MailboxFlags: %d message(s) without keywords: %s", spec,
		    flag_failures, flag_err);
	if (server_ok)
		(void)mailimap_logout(imap);
	goto out;
wipe:
	explicit_bzero(password, sizeof(password));
out:
	if (imap != NULL)
		mailimap_free(imap);
	free(uids);
	if (ret == 0 && !server_ok && err[0]) {
		if (mailbox_may_log(spec, mp->now))
			log_warnx("mailbox %s: %s (retried every MailboxPoll; logged once a minute)",
			    spec, err);
	} else if (server_ok) {
		mailbox_ok_again(spec);
	}
	return ret;
}

int
mailbox_run(const struct config *cfg, const struct classify_rules *rules,
    const struct ack_ctx *ack, struct store *store, time_t now, volatile sig_atomic_t *stop)
{
	struct mailbox_pass mp = { cfg, rules, ack, store, now, NULL, 0, 0, 0, 0 };
	int failed = 0;

	for (size_t i = 0; i < cfg->mailboxes.count && !failed && !*stop; i++) {
		const char *spec = cfg->mailboxes.items[i];

		mp.too_old = 0;
		if (strncmp(spec, "maildir:", 8) == 0)
			failed = mailbox_maildir(&mp, spec, stop) != 0;
		else if (strncmp(spec, "imap", 4) == 0)
			failed = mailbox_imap(&mp, spec, stop) != 0;
		if (mp.too_old > 0)
			log_info("mailbox %s: %d message(s) older than MailboxMaxAge (%lds) left alone",
			    spec, mp.too_old, cfg->mailbox_max_age);
	}
	free(mp.res);
	return failed ? -1 : mp.recorded;
}
