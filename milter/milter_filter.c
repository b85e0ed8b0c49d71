/*
 * The libmilter callbacks of helpgate-milter.
 *
 * Contract with the MTA: every message is accepted (SMFIS_ACCEPT or
 * SMFIS_CONTINUE); helpgate never rejects, tempfails or holds support mail.
 * Every message's headers are read (without replies: the MTA streams them)
 * so that X-Helpgate-* headers a sender wrote are deleted from all mail,
 * not only from support mail: staff filters trust them.  Only mail sealed
 * by helpgate's worker (X-Helpgate-Seal, seal.h) keeps its own.  Non-support
 * mail's body is skipped.  Support mail is buffered (headers, then at most
 * MaxBodyScan bytes of body), decoded and classified at end of message.
 *
 * Who is staff comes from the MTA alone: the SASL login ({auth_authen})
 * or the client address ({client_addr}), see config_is_staff_login.
 *
 * Memory: one struct filter_ctx per connection, allocated in the first
 * callback that needs it and freed only in filter_close; message state is
 * reset in one place (filter_reset_message).  No large stack buffers:
 * libmilter runs one thread per connection.
 */
#include "milter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "intake.h"
#include "log.h"
#include "mailcmd.h"
#include "msg.h"
#include "nameset.h"
#include "seal.h"
#include "store.h"
#include "xalloc.h"

#define HEADER_BLOCK_MAX	(256 * 1024)	/* headers kept for decoding */
/* Staff mail is kept whole, up to this, so that commands can be taken out
 * of the client's copy; a larger one with commands is refused. */
#define STAFF_BODY_MAX		(32 * 1024 * 1024)
#define STORE_RETRY_SECONDS	5
#define DEGRADED_LOG_SECONDS	60

struct filter_ctx {
	struct milter_snapshot	*snap;
	char			*envelope_from;
	char			*support_rcpt;	/* first support recipient */
	struct buf		 raw;		/* header block + scanned body */
	size_t			 header_bytes;
	size_t			 body_offset;	/* where the body starts in raw */
	int			 in_body;
	/* every X-Helpgate-* header that arrived: deleted at end of message,
	 * however many, unless the message is sealed */
	struct nameset		 ours;
	char			*seal;		/* the first X-Helpgate-Seal */
	struct buf		 seal_cover;	/* the headers a seal vouches for */
	char			*message_id;	/* the first Message-ID, normalised */
	int			 importance_count;
	struct timespec		 started;
	unsigned long		 protocol;	/* SMFIP_* agreed with the MTA */
	char			*auth_login;	/* {auth_authen}; NULL: not authenticated */
	char			*client_addr;	/* {client_addr}; may be NULL */
	int			 staff_auth;	/* the MTA's word makes the sender staff */
	int			 staff_claim;	/* MAIL FROM says staff, the MTA does not */
	/* authenticated staff mail to anyone else: recorded on its case,
	 * never tagged */
	int			 staff_reply;
	int			 decided;	/* filter_decide() has run for this message */
};

/* With an SMFIP_NR_* step agreed, libmilter expects SMFIS_NOREPLY there. */
static sfsistat
filter_continue(const struct filter_ctx *fc, unsigned long no_reply_flag)
{
	return fc != NULL && (fc->protocol & no_reply_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* ---- the store, shared by all connections ---- */

/*
 * What happens when the store fails (all of it under store_lock):
 *  - cannot open (missing directory, corrupt or unreadable file, full disk):
 *    retried every STORE_RETRY_SECONDS from the message that comes along;
 *  - STORE_ERROR from an open handle (I/O error, full disk, corruption, the
 *    file deleted or replaced under it, see store_check_file): the handle is
 *    closed and the path reopened after STORE_RETRY_SECONDS, which
 *    recreates a deleted database with its schema or takes the replaced one;
 *  - STORE_BUSY (another process holds the write lock longer than
 *    StoreTimeout): for STORE_RETRY_SECONDS afterwards messages do not wait
 *    for the lock at all, so a database locked for minutes costs one message
 *    every few seconds StoreTimeout, and the others nothing.
 * Every message that finds the store unusable is delivered at once tagged
 * "degraded" and spooled (shared/spool.c) for the worker to open its case.
 * The trouble is logged at most once a minute with the number of degraded
 * messages since the last report, and its end once, when a message is
 * recorded again.
 */
static pthread_mutex_t	 store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store	*store_handle;
static char		*store_path;
static long		 store_timeout_ms;
static time_t		 store_next_retry;
static time_t		 store_busy_until;	/* no lock waits before this */

/* The outage report, under its own lock: a message whose wait for
 * store_lock timed out reports too. */
static pthread_mutex_t	 degraded_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t		 degraded_logged;	/* last report */
static time_t		 degraded_since;	/* start of the outage; 0: none */
static unsigned long	 degraded_unreported;	/* messages since the last report */
static unsigned long	 degraded_total;	/* messages in this outage */

/* One degraded message (message != 0) or a failed open (message == 0). */
static void
milter_degraded_note(time_t now, int message, const char *why)
{
	pthread_mutex_lock(&degraded_lock);
	if (degraded_since == 0)
		degraded_since = now;
	if (message) {
		degraded_unreported++;
		degraded_total++;
	}
	if (now - degraded_logged >= DEGRADED_LOG_SECONDS) {
		degraded_logged = now;
		log_warnx("case store %s unusable: %s; support mail is delivered tagged degraded "
		    "and spooled for the worker (%lu degraded since the last report; logged "
		    "once a minute)", store_path ? store_path : "-", why, degraded_unreported);
		degraded_unreported = 0;
	}
	pthread_mutex_unlock(&degraded_lock);
}

/* A message was recorded: ends an outage, once. */
static void
milter_degraded_over(time_t now)
{
	pthread_mutex_lock(&degraded_lock);
	if (degraded_since != 0) {
		log_info("case store %s is back after %llds; %lu support messages were degraded "
		    "meanwhile (the worker opens their cases from the spool)",
		    store_path ? store_path : "-", (long long)(now - degraded_since), degraded_total);
		degraded_since = 0;
		degraded_total = 0;
		degraded_unreported = 0;
		degraded_logged = 0;	/* the next outage is reported at once */
	}
	pthread_mutex_unlock(&degraded_lock);
}

static void
milter_store_try_open(time_t now)
{
	char err[256];

	if (store_handle != NULL || store_path == NULL || now < store_next_retry)
		return;
	if (store_open(store_path, store_timeout_ms, &store_handle, err, sizeof(err)) != STORE_OK) {
		store_handle = NULL;
		store_next_retry = now + STORE_RETRY_SECONDS;
		milter_degraded_note(now, 0, err);
	} else {
		log_info("case store %s open", store_path);
	}
}

void
milter_store_init(const char *path, long timeout_ms)
{
	pthread_mutex_lock(&store_lock);
	free(store_path);
	store_path = xstrdup(path);
	store_timeout_ms = timeout_ms;
	store_next_retry = 0;
	milter_store_try_open(time(NULL));
	pthread_mutex_unlock(&store_lock);
}

void
milter_store_shutdown(void)
{
	pthread_mutex_lock(&store_lock);
	store_close(store_handle);
	store_handle = NULL;
	free(store_path);
	store_path = NULL;
	pthread_mutex_unlock(&store_lock);
}

/*
 * Takes store_lock, waiting at most StoreTimeout: with the database's own
 * busy wait (the same StoreTimeout) and the busy back-off above, a message
 * waits for a wedged store at most about twice StoreTimeout, never for the
 * length of the queue behind it.
 */
static int
filter_lock_store(void)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += store_timeout_ms / 1000;
	deadline.tv_nsec += (store_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	return pthread_mutex_timedlock(&store_lock, &deadline) == 0;
}

/* With store_lock held: the handle to use now, or NULL (store missing, or
 * locked by someone else a moment ago). */
static struct store *
filter_store_usable(time_t now)
{
	if (now < store_busy_until)
		return NULL;
	milter_store_try_open(now);
	return store_handle;
}

/* With store_lock held: what a store verdict means for the handle. */
static void
filter_store_verdict(time_t now, enum store_rc rc)
{
	if (rc == STORE_BUSY) {
		store_busy_until = now + STORE_RETRY_SECONDS;
	} else if (rc == STORE_ERROR && store_handle != NULL) {
		/* A broken handle (file deleted or replaced, I/O error, full
		 * disk, corruption) is reopened rather than trusted again. */
		store_close(store_handle);
		store_handle = NULL;
		store_next_retry = now + STORE_RETRY_SECONDS;
	}
}

static void
filter_intake(struct intake_input *in, struct intake_result *out)
{
	time_t now = time(NULL);

	/* The text is read before the lock is taken: only the store work is
	 * serialised between connections. */
	intake_classify(in, out);
	if (!filter_lock_store()) {
		in->store = NULL;
		intake_record(in, out);
		snprintf(out->error, sizeof(out->error), "store busy (waited %ldms for another "
		    "message)", store_timeout_ms);
		milter_degraded_note(now, 1, out->error);
		return;
	}
	in->store = filter_store_usable(now);
	intake_record(in, out);
	if (in->store == NULL && now < store_busy_until)
		snprintf(out->error, sizeof(out->error), "store busy (locked by another process; "
		    "retried every %ds)", STORE_RETRY_SECONDS);
	if (out->disposition == INTAKE_DEGRADED && in->store != NULL)
		filter_store_verdict(now, out->store_rc);
	pthread_mutex_unlock(&store_lock);
	if (out->disposition == INTAKE_DEGRADED)
		milter_degraded_note(now, 1, out->error);
	else
		milter_degraded_over(now);
}

/*
 * The relay (this MTA) has the whole of one of helpgate's own messages and
 * is about to queue it.  Marking the outbox row here, before the MTA's
 * final reply, closes the window in which a worker killed between the
 * relay's "250" and its own commit would send the message twice: after a
 * restart the worker finds relay_seen set and does not resend.  Lowercase
 * ids: config_normalize_address lowered it, and the worker writes them so.
 */
static void
filter_outbound_seen(const char *message_id)
{
	enum store_rc rc;

	time_t now = time(NULL);

	if (!filter_lock_store())
		return;
	if (filter_store_usable(now) != NULL) {
		rc = store_outbox_relay_seen(store_handle, message_id);
		if (rc == STORE_OK)
			log_debug("outbox message <%s> entered the relay", message_id);
		else if (rc != STORE_NOTFOUND)
			log_warnx("outbox message <%s>: %s", message_id, store_strerror(rc));
		filter_store_verdict(now, rc);
	}
	pthread_mutex_unlock(&store_lock);
}

/* ---- the seal key: helpgate's own letters prove themselves (seal.h) ---- */

static pthread_mutex_t	 seal_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seal_key	 seal_key;
static int		 seal_loaded;
static char		*seal_path;
static time_t		 seal_next_try;

void
milter_seal_init(const char *path)
{
	char err[512];

	pthread_mutex_lock(&seal_lock);
	if (path != NULL && (seal_path == NULL || strcmp(seal_path, path) != 0)) {
		free(seal_path);
		seal_path = xstrdup(path);
	}
	if (!seal_loaded && seal_path != NULL) {
		if (seal_key_load(seal_path, &seal_key, err, sizeof(err)) == 0) {
			seal_loaded = 1;
		} else {
			/* mail still flows; helpgate's letters lose their headers */
			log_warnx("%s: X-Helpgate-* headers are removed from every message, helpgate's "
			    "own letters too, until the key can be read (retried every minute)", err);
			seal_next_try = time(NULL) + 60;
		}
	}
	pthread_mutex_unlock(&seal_lock);
}

/* Whether value seals message_id and cover (seal_verify), loading the key
 * first when an earlier try failed a minute ago or more. */
static int
filter_seal_valid(const char *value, const char *message_id, const struct buf *cover)
{
	time_t now = time(NULL);
	int ok = 0;

	pthread_mutex_lock(&seal_lock);
	if (!seal_loaded && seal_path != NULL && now >= seal_next_try) {
		pthread_mutex_unlock(&seal_lock);
		milter_seal_init(NULL);
		pthread_mutex_lock(&seal_lock);
	}
	if (seal_loaded)
		ok = seal_verify(&seal_key, value, message_id, cover, now, NULL);
	pthread_mutex_unlock(&seal_lock);
	return ok;
}

/* ---- the spool: degraded support mail waits there for its case ---- */

static pthread_mutex_t	 spool_log_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t		 spool_logged;

/* Writes the message fc holds to SpoolDirectory; what happened goes to
 * out (the file name, or "failed"). */
static void
filter_spool(struct filter_ctx *fc, const struct intake_input *in, char *out, size_t outlen)
{
	struct spool_record it = {
		.received = in->received,
		.queue_id = in->queue_id,
		.envelope_from = fc->envelope_from,
		.support_address = fc->support_rcpt,
		.staff_authenticated = fc->staff_auth,
		.truncated = fc->raw.truncated,
		.raw = buf_str(&fc->raw),
		.raw_len = fc->raw.len,
	};
	const char *dir = fc->snap->cfg->spool_directory;
	time_t now = time(NULL);

	int saved;

	if (spool_write(dir, &it, out, outlen) == 0)
		return;
	saved = errno;
	snprintf(out, outlen, "failed");
	pthread_mutex_lock(&spool_log_lock);
	if (now - spool_logged >= DEGRADED_LOG_SECONDS) {
		spool_logged = now;
		errno = saved;
		log_warn("cannot spool degraded support mail in %s; those messages get no case "
		    "(logged once a minute)", dir);
	}
	pthread_mutex_unlock(&spool_log_lock);
}

/* ---- per-message state ---- */
static void filter_staff_reply(SMFICTX *ctx, struct filter_ctx *fc);
static int filter_staff_commands(SMFICTX *ctx, struct filter_ctx *fc, const char *queue_id,
    sfsistat *verdict);

static void
filter_reset_message(struct filter_ctx *fc)
{
	free(fc->envelope_from);
	free(fc->support_rcpt);
	fc->envelope_from = NULL;
	fc->support_rcpt = NULL;
	buf_free(&fc->raw);
	fc->header_bytes = 0;
	fc->in_body = 0;
	nameset_clear(&fc->ours);
	free(fc->seal);
	buf_free(&fc->seal_cover);
	free(fc->message_id);
	free(fc->auth_login);
	free(fc->client_addr);
	fc->seal = fc->message_id = fc->auth_login = fc->client_addr = NULL;
	fc->importance_count = 0;
	fc->staff_auth = 0;
	fc->staff_claim = 0;
	fc->staff_reply = 0;
	fc->decided = 0;
	fc->body_offset = 0;
}

static struct filter_ctx *
filter_ctx_get(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc == NULL) {
		fc = xcalloc(1, sizeof(*fc));
		fc->snap = milter_snapshot_get();
		buf_init(&fc->raw, 0);
		buf_init(&fc->seal_cover, SEAL_COVER_MAX);
		smfi_setpriv(ctx, fc);
	}
	return fc;
}

static sfsistat
filter_envfrom(SMFICTX *ctx, char **argv)
{
	struct filter_ctx *fc = filter_ctx_get(ctx);

	const char *login, *addr;

	filter_reset_message(fc);
	fc->envelope_from = xstrdup(argv[0] ? argv[0] : "");
	if ((login = smfi_getsymval(ctx, "{auth_authen}")) != NULL && *login != '\0')
		fc->auth_login = xstrdup(login);
	if ((addr = smfi_getsymval(ctx, "{client_addr}")) != NULL && *addr != '\0')
		fc->client_addr = xstrdup(addr);
	fc->staff_auth = config_is_staff_login(fc->snap->cfg, fc->auth_login) ||
	    config_is_staff_network(fc->snap->cfg, fc->client_addr);
	return filter_continue(fc, SMFIP_NR_MAIL);
}

static sfsistat
filter_envrcpt(SMFICTX *ctx, char **argv)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL && fc->support_rcpt == NULL && argv[0] != NULL &&
	    config_is_support_address(fc->snap->cfg, argv[0])) {
		fc->support_rcpt = xstrdup(argv[0]);
		config_normalize_address(fc->support_rcpt);
		/* Sized here, not at DATA: an MTA speaking milter protocol 2
		 * or 3 (Postfix milter_protocol = 2, Sendmail 8.13) never
		 * sends DATA, and a buffer capped at 0 would keep nothing. */
		buf_free(&fc->raw);
		buf_init(&fc->raw, HEADER_BLOCK_MAX +
		    (fc->staff_auth ? STAFF_BODY_MAX : fc->snap->cfg->max_body_scan));
	}
	return filter_continue(fc, SMFIP_NR_RCPT);
}

/*
 * What kind of message this is, decided once all recipients are known: at
 * DATA, or at the first header for an MTA that never sends DATA (milter
 * protocol 2 and 3).  Support mail is classified; authenticated staff
 * writing to anyone else may be answering a case (headers only); every
 * other message is read for its X-Helpgate-* headers only.
 */
static void
filter_decide(struct filter_ctx *fc)
{
	if (fc->decided)
		return;
	fc->decided = 1;
	if (fc->support_rcpt != NULL)
		return;
	if (fc->staff_auth) {
		fc->staff_reply = 1;
		buf_free(&fc->raw);
		buf_init(&fc->raw, HEADER_BLOCK_MAX + STAFF_BODY_MAX);
	} else if (fc->envelope_from != NULL && config_is_staff(fc->snap->cfg, fc->envelope_from)) {
		fc->staff_claim = 1;	/* said in the log at end of message */
	}
}

static sfsistat
filter_data(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL)
		filter_decide(fc);
	return SMFIS_CONTINUE;
}

static sfsistat
filter_header(SMFICTX *ctx, char *name, char *value)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc == NULL)
		return SMFIS_CONTINUE;
	if (!fc->decided)
		filter_decide(fc);
	seal_cover_add(&fc->seal_cover, name, value);
	if (strncasecmp(name, "X-Helpgate-", 11) == 0) {
		if (fc->seal == NULL && strcasecmp(name, "X-Helpgate-Seal") == 0)
			fc->seal = xstrdup(value);
		nameset_add(&fc->ours, name);
		return filter_continue(fc, SMFIP_NR_HDR);	/* never classified either */
	}
	if (fc->message_id == NULL && strcasecmp(name, "Message-ID") == 0) {
		fc->message_id = xstrdup(value);
		config_normalize_address(fc->message_id);	/* strips <> and blanks */
	}
	if (fc->support_rcpt == NULL && !fc->staff_reply)
		return filter_continue(fc, SMFIP_NR_HDR);
	if (strcasecmp(name, "Importance") == 0)
		fc->importance_count++;
	if (fc->header_bytes < HEADER_BLOCK_MAX) {
		size_t before = fc->raw.len;

		buf_append_str(&fc->raw, name);
		buf_append(&fc->raw, ": ", 2);
		buf_append_str(&fc->raw, value);
		buf_append(&fc->raw, "\r\n", 2);
		fc->header_bytes += fc->raw.len - before;
	}
	return filter_continue(fc, SMFIP_NR_HDR);
}

static sfsistat
filter_eoh(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL && (fc->support_rcpt != NULL || fc->staff_reply)) {
		buf_append(&fc->raw, "\r\n", 2);
		fc->body_offset = fc->raw.len;
		fc->in_body = 1;
	}
	return filter_continue(fc, SMFIP_NR_EOH);
}

static sfsistat
filter_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL && fc->support_rcpt == NULL && !fc->staff_reply && (fc->protocol & SMFIP_SKIP))
		return SMFIS_SKIP;
	if (fc == NULL || (fc->support_rcpt == NULL && !fc->staff_reply))
		return SMFIS_CONTINUE;
	buf_append(&fc->raw, chunk, len);	/* stops at the cap by itself */
	/* Past MaxBodyScan the rest of a multi-megabyte attachment need not
	 * cross the socket at all. */
	if (fc->raw.truncated && (fc->protocol & SMFIP_SKIP))
		return SMFIS_SKIP;
	return SMFIS_CONTINUE;
}

static void
filter_add_header(SMFICTX *ctx, const char *name, const char *value, int *failures)
{
	if (smfi_addheader(ctx, (char *)name, (char *)value) != MI_SUCCESS)
		(*failures)++;
}

struct filter_delete {
	SMFICTX	*ctx;
	int	 failures;
	int	 deleted;
};

static void
filter_delete_name(const char *name, int count, void *arg)
{
	struct filter_delete *d = arg;

	/* last first, so that the indexes of the others do not shift */
	for (int idx = count; idx >= 1; idx--) {
		if (smfi_chgheader(d->ctx, (char *)name, idx, NULL) != MI_SUCCESS)
			d->failures++;
		else
			d->deleted++;
	}
}

/* Deletes every X-Helpgate-* header that arrived with an unsealed message;
 * returns the failures, *deleted the count removed. */
static int
filter_delete_forged(SMFICTX *ctx, struct filter_ctx *fc, int *deleted)
{
	struct filter_delete d = { ctx, 0, 0 };

	nameset_each(&fc->ours, filter_delete_name, &d);
	if (deleted != NULL)
		*deleted = d.deleted;
	return d.failures;
}

static long
elapsed_us(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000000L + (now.tv_nsec - start->tv_nsec) / 1000;
}

static sfsistat
filter_eom(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);
	struct intake_input in;
	struct intake_result *res;
	struct msg *m;
	char value[160], due[64], spooled[160] = "";
	char *reasons;
	const char *queue_id;
	int failures = 0, deleted = 0;

	if (fc == NULL)
		return SMFIS_ACCEPT;
	queue_id = smfi_getsymval(ctx, "i");
	if (queue_id == NULL)
		queue_id = "";
	/* helpgate's own letter, proved by its seal: its headers stay, and the
	 * outbox row learns that the relay has it whole */
	if (fc->seal != NULL && fc->message_id != NULL && filter_seal_valid(fc->seal, fc->message_id, &fc->seal_cover)) {
		filter_outbound_seen(fc->message_id);
		filter_reset_message(fc);
		return SMFIS_ACCEPT;
	}
	failures += filter_delete_forged(ctx, fc, &deleted);
	if (deleted > 0 && fc->support_rcpt == NULL)
		log_info("%s: removed %d X-Helpgate-* header%s a sender wrote (%s)",
		    *queue_id ? queue_id : "NOQUEUE", deleted, deleted == 1 ? "" : "s",
		    fc->seal != NULL ? "seal not valid" : "no seal");
	if (fc->staff_auth) {
		sfsistat verdict;

		if (filter_staff_commands(ctx, fc, queue_id, &verdict)) {
			filter_reset_message(fc);
			return verdict;
		}
	}
	if (fc->staff_reply) {
		filter_staff_reply(ctx, fc);
		filter_reset_message(fc);
		return SMFIS_ACCEPT;
	}
	if (fc->support_rcpt == NULL) {
		if (fc->staff_claim) {
			char from[320];

			snprintf(from, sizeof(from), "%s", fc->envelope_from);
			log_info("%s: from=<%s> claims staff without authentication (login %s): not "
			    "taken as a staff reply", *queue_id ? queue_id : "NOQUEUE",
			    config_normalize_address(from), fc->auth_login ? fc->auth_login : "none");
		}
		filter_reset_message(fc);
		return SMFIS_ACCEPT;
	}
	/* What helpgate itself adds to a message's path: decode, classify,
	 * record, tag.  (Time before this is the client's and the MTA's.) */
	clock_gettime(CLOCK_MONOTONIC, &fc->started);

	m = msg_parse(buf_str(&fc->raw), fc->raw.len, fc->snap->cfg->max_body_scan);
	if (fc->raw.truncated)
		m->flags |= MSG_TRUNCATED;
	if (!fc->staff_auth && m->text_len > 0 && m->text[strspn(m->text, " \t\r\n")] == '#') {
		struct mailcmd_list *l = xmalloc(sizeof(*l));

		/* a client (or someone claiming staff) cannot command: their
		 * lines are their own text, and the log says so */
		if (mailcmd_parse(m->text, m->text_len, l) > 0)
			log_info("%s: %zu #command line%s from=<%s> login=%s ignored: not authenticated "
			    "as staff", *queue_id ? queue_id : "NOQUEUE", l->n, l->n == 1 ? "" : "s",
			    fc->envelope_from, fc->auth_login ? fc->auth_login : "-");
		free(l);
	}
	res = xcalloc(1, sizeof(*res));
	memset(&in, 0, sizeof(in));
	in.cfg = fc->snap->cfg;
	in.rules = fc->snap->rules;
	in.msg = m;
	in.envelope_from = fc->envelope_from;
	in.support_address = fc->support_rcpt;
	in.queue_id = queue_id;
	in.received = clock_now();
	in.staff_authenticated = fc->staff_auth;
	filter_intake(&in, res);
	if (res->disposition == INTAKE_DEGRADED)
		filter_spool(fc, &in, spooled, sizeof(spooled));

	if (res->case_id > 0) {
		snprintf(value, sizeof(value), "HG-%lld", res->case_id);
		filter_add_header(ctx, "X-Helpgate-Case", value, &failures);
	}
	filter_add_header(ctx, "X-Helpgate-Urgency", classify_urgency_name(res->cls.urgency), &failures);
	snprintf(value, sizeof(value), "%s%s", res->tier, res->watch ? "+watch" : "");
	filter_add_header(ctx, "X-Helpgate-Tier", value, &failures);
	filter_add_header(ctx, "X-Helpgate-Category", res->cls.category, &failures);
	if (res->cls.auto_reason[0] == '\0' && !res->staff) {
		clock_format_rfc5322(res->first_due, due, sizeof(due));
		filter_add_header(ctx, "X-Helpgate-SLA-Due", due, &failures);
	}
	if (res->cls.reasons[0] != '\0') {
		reasons = msg_encode_header_value(res->cls.reasons, sizeof("X-Helpgate-Reasons: ") - 1);
		filter_add_header(ctx, "X-Helpgate-Reasons", reasons, &failures);
		free(reasons);
	}
	if (res->cls.auto_reason[0] != '\0')
		filter_add_header(ctx, "X-Helpgate-Auto", res->cls.auto_reason, &failures);
	if (res->disposition == INTAKE_DEGRADED)
		filter_add_header(ctx, "X-Helpgate-Status", "degraded", &failures);
	if (res->cls.urgency <= 2 && res->cls.auto_reason[0] == '\0') {
		if (fc->importance_count > 0) {
			if (smfi_chgheader(ctx, "Importance", 1, "high") != MI_SUCCESS)
				failures++;
		} else {
			filter_add_header(ctx, "Importance", "high", &failures);
		}
	}

	char case_name[32] = "-";
	if (res->case_id > 0)
		snprintf(case_name, sizeof(case_name), "HG-%lld", res->case_id);
	log_info("%s: case=%s urgency=%s tier=%s%s category=%s auto=%s %s%s%s%s%s "
	    "from=<%s>%s%s elapsed_us=%ld%s%s",
	    *queue_id ? queue_id : "NOQUEUE", case_name,
	    classify_urgency_name(res->cls.urgency), res->tier, res->watch ? "+watch" : "",
	    res->cls.category, res->cls.auto_reason[0] ? res->cls.auto_reason : "-",
	    intake_disposition_name(res->disposition),
	    res->disposition == INTAKE_DEGRADED ? ": " : "",
	    res->disposition == INTAKE_DEGRADED ? res->error : "",
	    res->disposition == INTAKE_DEGRADED ? "; spool=" : "",
	    res->disposition == INTAKE_DEGRADED ? spooled : "",
	    res->client, res->staff ? " staff" : "",
	    res->staff_claim ? " staff-claim=unauthenticated" : "", elapsed_us(&fc->started),
	    failures ? " header-changes-failed=" : "", failures ? "yes" : "");

	msg_free(m);
	free(res);
	filter_reset_message(fc);
	return SMFIS_ACCEPT;
}

/*
 * Commands at the top of authenticated staff mail (mailcmd.h): recorded for
 * the worker, which carries them out and answers the staff member, and
 * taken out of the copy that goes on: the client never sees a command, and
 * a mail of nothing but commands and notes goes to nobody.  Returns 0 when
 * there are none (the mail goes the usual way), else 1 with *verdict set.
 * Commands are never lost: with the store unavailable the MTA is asked to
 * try again later.
 */
static int
filter_staff_commands(SMFICTX *ctx, struct filter_ctx *fc, const char *queue_id,
    sfsistat *verdict)
{
	struct mailcmd_list *cmds = xmalloc(sizeof(*cmds));
	struct intake_input in;
	struct msg *m = msg_parse(buf_str(&fc->raw), fc->raw.len, 64 * 1024);
	const char *qid = *queue_id ? queue_id : "NOQUEUE";
	long long case_id = -1;
	struct buf body;

	if (mailcmd_parse(m->text, m->text_len, cmds) == 0) {
		free(cmds);
		msg_free(m);
		return 0;
	}
	*verdict = SMFIS_ACCEPT;
	if (fc->raw.truncated) {
		log_warnx("%s: staff mail with commands from login=%s is larger than %d MB: refused, "
		    "the commands could not be taken out of it", qid, fc->auth_login ? fc->auth_login : "-",
		    STAFF_BODY_MAX / (1024 * 1024));
		smfi_setreply(ctx, "552", "5.3.4", "helpgate: too large to take the #commands out; "
		    "send them in a mail of their own");
		*verdict = SMFIS_REJECT;
		goto done;
	}
	memset(&in, 0, sizeof(in));
	in.cfg = fc->snap->cfg;
	in.rules = fc->snap->rules;
	in.msg = m;
	in.envelope_from = fc->envelope_from;
	in.support_address = fc->support_rcpt;
	in.queue_id = queue_id;
	in.received = clock_now();
	in.staff_authenticated = 1;
	if (filter_lock_store()) {
		in.store = filter_store_usable(time(NULL));
		case_id = intake_staff_commands(&in, cmds, fc->auth_login,
		    fc->staff_reply && !cmds->only_commands);
		pthread_mutex_unlock(&store_lock);
	}
	if (case_id < 0) {
		log_warnx("%s: staff commands from login=%s not recorded: case store unavailable; "
		    "the MTA will try again", qid, fc->auth_login ? fc->auth_login : "-");
		smfi_setreply(ctx, "451", "4.3.0", "helpgate: case store unavailable, try again later");
		*verdict = SMFIS_TEMPFAIL;
		goto done;
	}
	{
		char case_name[32] = "none";

		if (case_id > 0)
			snprintf(case_name, sizeof(case_name), "HG-%lld", case_id);
		log_info("%s: case=%s %zu staff command%s from=<%s> login=%s%s", qid, case_name,
		    cmds->n, cmds->n == 1 ? "" : "s", fc->envelope_from,
		    fc->auth_login ? fc->auth_login : "-",
		    cmds->only_commands ? "; nothing else in it: not delivered" :
		    "; taken out of the copy");
	}
	if (cmds->only_commands) {
		*verdict = SMFIS_DISCARD;
		goto done;
	}
	buf_init(&body, fc->raw.len + 1024);
	if (fc->body_offset <= fc->raw.len &&
	    mailcmd_strip(buf_str(&fc->raw), fc->raw.len, fc->body_offset, &body) > 0 &&
	    smfi_replacebody(ctx, (unsigned char *)body.data, (int)body.len) != MI_SUCCESS) {
		/* the client would see the commands: better not deliver */
		log_warnx("%s: could not take the staff commands out of the body: refused", qid);
		smfi_setreply(ctx, "451", "4.3.0", "helpgate: could not take the #commands out; try again");
		*verdict = SMFIS_TEMPFAIL;
	}
	buf_free(&body);
done:
	free(cmds);
	msg_free(m);
	return 1;
}

/* Staff mail to a client: if it answers a case, the case learns of it. */
static void
filter_staff_reply(SMFICTX *ctx, struct filter_ctx *fc)
{
	struct intake_input in;
	const char *queue_id = smfi_getsymval(ctx, "i");
	struct msg *m = msg_parse(buf_str(&fc->raw), fc->raw.len, 4096);
	long long case_id;

	memset(&in, 0, sizeof(in));
	in.cfg = fc->snap->cfg;
	in.rules = fc->snap->rules;
	in.msg = m;
	in.envelope_from = fc->envelope_from;
	in.queue_id = queue_id ? queue_id : "";
	in.received = clock_now();
	in.staff_authenticated = 1;
	if (filter_lock_store()) {
		in.store = filter_store_usable(time(NULL));
		case_id = intake_staff_reply(&in);
		pthread_mutex_unlock(&store_lock);
		if (case_id > 0)
			log_info("%s: case=HG-%lld staff reply from=<%s> login=%s", in.queue_id[0] ?
			    in.queue_id : "NOQUEUE", case_id, m->from_address,
			    fc->auth_login ? fc->auth_login : "-");
		else if (case_id < 0)
			log_warnx("%s: staff reply not recorded: case store unavailable",
			    in.queue_id[0] ? in.queue_id : "NOQUEUE");
	}
	msg_free(m);
}

static sfsistat
filter_abort(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL)
		filter_reset_message(fc);
	return SMFIS_CONTINUE;
}

static sfsistat
filter_close(SMFICTX *ctx)
{
	struct filter_ctx *fc = smfi_getpriv(ctx);

	if (fc != NULL) {
		filter_reset_message(fc);
		milter_snapshot_put(fc->snap);
		free(fc);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

/*
 * Ask for as little as possible: no connect/helo/unknown events, and no
 * replies to MAIL, RCPT, headers and end of headers, so that Postfix
 * streams a message without waiting on us per header.  DATA (where
 * non-support mail is let go), body chunks (answered SKIP once the scan
 * limit is reached) and end of message are answered.
 */
static sfsistat
filter_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long wanted = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN |
	    SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_SKIP;

	struct filter_ctx *fc = filter_ctx_get(ctx);

	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_SETSYMLIST);
	*pf1 = f1 & wanted;
	/* Who the MTA authenticated, at MAIL FROM: Postfix's default list
	 * lacks {client_addr}, and the connect event is not asked for. */
	if ((*pf0 & SMFIF_SETSYMLIST) &&
	    smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {auth_type} {client_addr}") != MI_SUCCESS)
		log_debug("the MTA did not take the macro list; using its defaults");
	fc->protocol = *pf1;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

struct smfiDesc milter_filter_desc = {
	.xxfi_name = "helpgate",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_SETSYMLIST,
	.xxfi_connect = NULL,
	.xxfi_helo = NULL,
	.xxfi_envfrom = filter_envfrom,
	.xxfi_envrcpt = filter_envrcpt,
	.xxfi_header = filter_header,
	.xxfi_eoh = filter_eoh,
	.xxfi_body = filter_body,
	.xxfi_eom = filter_eom,
	.xxfi_abort = filter_abort,
	.xxfi_close = filter_close,
	.xxfi_unknown = NULL,
	.xxfi_data = filter_data,
	.xxfi_negotiate = filter_negotiate,
};
