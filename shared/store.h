/*
 * store - the case store: customers, cases and their messages.
 *
 * One small interface, two backends: SQLite for one host (WAL mode, a busy
 * timeout) and PostgreSQL for several hosts sharing one database.  store.c
 * holds every statement once; store_sqlite.c and store_pg.c are the
 * drivers (store_driver.h).  Every statement is prepared with bound
 * parameters; the schema is versioned and migrated forward by store_open().
 * A write transaction (store_begin) is serialised with every other writer
 * on the database, on one host or many.
 *
 * A handle is not thread-safe: one thread at a time (the milter serialises
 * with a mutex; the worker and helpgatectl are single-threaded).  Every
 * function returns a store_rc; STORE_BUSY means the database stayed locked
 * past the timeout, and the caller decides (the milter degrades, the worker
 * retries).  Strings in records are NUL-terminated and cut to their field
 * size (on a UTF-8 character boundary); times are Unix seconds, 0 meaning
 * "not set".  A list callback may call other store functions on the same
 * handle, but not the list function that is calling it.
 */
#ifndef HG_STORE_H
#define HG_STORE_H

#include <stddef.h>

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND,		/* no such row */
	STORE_BUSY,		/* locked longer than the timeout */
	STORE_EXISTS,		/* unique key already present */
	STORE_ERROR,		/* anything else: I/O, corruption, full disk */
};

const char *store_strerror(enum store_rc rc);

struct store;

/* Opens (creating and migrating if needed) the database target names: a
 * file path (SQLite), or a "postgresql://..." URI or libpq keyword string
 * ("host=... dbname=...").  timeout_ms: how long a statement waits for a
 * lock, or for a PostgreSQL server that does not answer.  On failure *out
 * is NULL and, when errbuf is given, it holds the reason (never a
 * password). */
enum store_rc store_open(const char *target, long timeout_ms, struct store **out,
    char *errbuf, size_t errlen);
/* Whether store_open would take target as PostgreSQL. */
int	store_target_is_pg(const char *target);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *s);
/* PostgreSQL: read the password from this file (one line, mode 0600) on
 * every connect; NULL: libpq's own ways (~/.pgpass, PGPASSFILE). */
void	store_set_password_file(const char *path);
void	store_close(struct store *s);			/* accepts NULL */
/* The last error message from the backend (never a secret). */
const char *store_errmsg(const struct store *s);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; nesting is not supported. */
enum store_rc store_begin(struct store *s);
enum store_rc store_commit(struct store *s);
void	store_rollback(struct store *s);

/* ---- customers ---- */
struct customer {
	char		address[320];	/* "user@example.com" or "@example.com", lowercase */
	char		tier[32];
	long long	watch_until;	/* incident watch ends; 0 = none */
	long long	created;
};

/* Inserts or replaces the row with this address. */
enum store_rc store_customer_put(struct store *s, const struct customer *c);
enum store_rc store_customer_remove(struct store *s, const char *address);
/* Exact address first, then "@domain" of the address; STORE_NOTFOUND if neither. */
enum store_rc store_customer_lookup(struct store *s, const char *address, struct customer *out);
/* Calls cb for each customer ordered by address; a non-zero return from cb stops. */
enum store_rc store_customer_list(struct store *s,
    int (*cb)(const struct customer *c, void *arg), void *arg);

/* ---- cases ---- */
struct case_rec {
	long long	id;		/* HG-<id> */
	long long	created;	/* when the MTA accepted the first message */
	long long	updated;
	char		status[16];	/* "open", "waiting", "resolved" */
	char		client[320];	/* client address, lowercase */
	char		support_address[320];	/* the address the client wrote to */
	char		subject[512];	/* decoded */
	int		urgency;	/* 1..4 */
	char		tier[32];
	int		watch;		/* customer was under incident watch */
	char		category[48];
	char		lang[8];
	char		reasons[600];
	long long	first_due;	/* first-response deadline */
	long long	resolve_due;
	long long	first_response_at;
	long long	resolved_at;
	char		assignee[320];
	long long	paused_at;	/* waiting for the client since; 0 = running */
	long long	paused_total;	/* resolution-clock seconds spent waiting so far */
	char		cause[512];	/* recorded at resolution */
	char		lesson[512];
	int		incident;	/* resolved as an incident */
};

/* Inserts c (c->id ignored) and sets c->id. */
enum store_rc store_case_create(struct store *s, struct case_rec *c);
enum store_rc store_case_get(struct store *s, long long id, struct case_rec *out);
/* Raises the case's urgency to at most `urgency` (a smaller number) and
 * sets updated. */
enum store_rc store_case_touch(struct store *s, long long id, int urgency, long long now);
/* Records the first staff response (only the first one counts). */
enum store_rc store_case_responded(struct store *s, long long id, long long at);
/* Open cases, the nearest deadline first (first response until answered,
 * then resolution), at most limit: an index walk, not a scan. */
enum store_rc store_case_by_due(struct store *s, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg);
/* open_only: status != 'resolved'.  Newest first. */
enum store_rc store_case_list(struct store *s, int open_only,
    int (*cb)(const struct case_rec *c, void *arg), void *arg);

/* ---- messages ---- */
struct message_rec {
	long long	id;
	long long	case_id;
	char		message_id[512];	/* without <>; may be "" */
	char		direction[8];	/* "in" (client), "staff", "out" (helpgate) */
	char		sender[320];
	long long	received;
	char		date_header[80];
	char		subject[512];
	char		queue_id[32];	/* MTA queue id */
	int		urgency;	/* this message's own classification */
	char		category[48];
	char		auto_reason[64];
	char		excerpt[2048];	/* decoded text, start of */
	char		references[1024];	/* the message's References ids, space-separated, without <> */
	char		ack[64];	/* the worker's acknowledgement decision: "" undecided,
					 * "queued", or "skip:<reason>" */
	char		sender_auth[48];	/* "verified:<how>", "unverified:<why>" (authres.h);
					 * "" for messages older than the check */
	char		via[16];	/* "" the milter recorded it; "mailbox": the worker
					 * found it in the support mailbox (schema v6) */
};

/* Adds m (m->id ignored, set on return).  STORE_EXISTS when a message with
 * the same non-empty message_id is already stored (nothing written). */
enum store_rc store_message_add(struct store *s, struct message_rec *m);
/* The case that a stored message with this Message-ID belongs to. */
enum store_rc store_message_case(struct store *s, const char *message_id, long long *case_id);
/* Client messages ("in") on the case received at or after since. */
enum store_rc store_message_count_since(struct store *s, long long case_id,
    long long since, int *count);
/* Oldest first. */
enum store_rc store_message_list(struct store *s, long long case_id,
    int (*cb)(const struct message_rec *m, void *arg), void *arg);

/* Messages the worker has not decided about yet (ack = ""), oldest first. */
enum store_rc store_message_undecided(struct store *s, int limit,
    int (*cb)(const struct message_rec *m, void *arg), void *arg);
/* STORE_NOTFOUND when the message is already decided (by another worker). */
enum store_rc store_message_set_ack(struct store *s, long long id, const char *ack);
/* The id of the first message recorded on the case (the one that opened it). */
enum store_rc store_case_first_message(struct store *s, long long case_id, long long *message_id);

/* ---- outbox: every message helpgate sends ---- */
struct outbox_rec {
	long long	id;
	long long	case_id;	/* 0 when about no case */
	char		kind[16];	/* "ack", "notice", ... */
	char		recipient[320];
	char		envelope_from[320];	/* "" = null sender (RFC 3834 for auto-replies) */
	char		message_id[256];	/* without <> */
	char		state[12];	/* "pending", "sending", "sent", "failed" */
	int		attempts;
	long long	next_attempt;
	long long	created;
	long long	sent_at;
	int		relay_seen;	/* the relay's milter saw it whole (see store_outbox_relay_seen) */
	char		last_error[256];
	char	       *content;	/* the whole RFC 5322 message; heap, owned by
					 * the record (outbox_rec_clear frees it) */
};

void	outbox_rec_clear(struct outbox_rec *o);
/* Adds o (state pending).  STORE_EXISTS when the case already has an
 * acknowledgement (at most one per case, enforced by a unique index) or
 * the Message-ID is taken. */
enum store_rc store_outbox_add(struct store *s, struct outbox_rec *o);
/* Rows in state pending or sending whose next_attempt <= now, oldest first;
 * o->content is set for the callback and freed after it. */
enum store_rc store_outbox_due(struct store *s, long long now, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg);
/* Sets state, attempts, next_attempt, sent_at, last_error and relay_seen
 * of row id; relay_seen < 0 leaves the stored value alone (the milter may
 * be setting it at this very moment). */
enum store_rc store_outbox_update(struct store *s, const struct outbox_rec *o);
/* Called by the milter when a message with this Message-ID passed it on its
 * way into the relay: sets relay_seen on a pending/sending row.  After a
 * crash, a row in "sending" with relay_seen set was accepted by the relay
 * and must not be sent again.  STORE_NOTFOUND when no such row waits. */
enum store_rc store_outbox_relay_seen(struct store *s, const char *message_id);
/* Acknowledgements to recipient, or to any of its +detail variants (the
 * same mailbox), created at or after since. */
enum store_rc store_outbox_count_acks(struct store *s, const char *recipient,
    long long since, int *count);
/* Outbox rows of kind created at or after since whose Message-ID matches
 * the LIKE pattern (NULL or "": any). */
enum store_rc store_outbox_count_kind(struct store *s, const char *kind,
    const char *message_id_like, long long since, int *count);
/* Notices matching message_id_like about cases whose client is in domain. */
enum store_rc store_outbox_count_domain_notices(struct store *s, const char *message_id_like,
    const char *client_domain, long long since, int *count);
/* case_id 0: all rows.  Newest first; content is not loaded. */
enum store_rc store_outbox_list(struct store *s, long long case_id, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg);

/* ---- case life cycle (staff commands) ---- */
/* status: "open", "waiting", "resolved"; the other arguments as named.
 * Each updates `updated` to now. */
enum store_rc store_case_set_status(struct store *s, long long id, const char *status,
    long long now, long long paused_at, long long resolve_due, long long resolved_at,
    long long paused_total);
enum store_rc store_case_assign(struct store *s, long long id, const char *assignee, long long now);
/* A person sets the urgency (either way) and the deadlines that go with it. */
enum store_rc store_case_set_urgency(struct store *s, long long id, int urgency,
    long long first_due, long long resolve_due, long long now);
enum store_rc store_case_set_resolution(struct store *s, long long id, const char *cause,
    const char *lesson, int incident);
/* Puts the customer (address key) under incident watch until `until`,
 * creating the record with tier if there is none. */
enum store_rc store_customer_watch(struct store *s, const char *address, const char *tier,
    long long until, long long now);

/* ---- SLA events: every warning, breach and escalation fires once ---- */
struct event_rec {
	long long	id;
	long long	case_id;
	char		kind[32];	/* "first-warning", "first-breach", "escalate-1", ... */
	long long	due;
	long long	fired;		/* 0 pending; when it fired; -1 cancelled */
	char		note[128];	/* why cancelled or to whom it went */
};

/* Adds the event unless the case already has one of this kind (STORE_EXISTS). */
enum store_rc store_event_add(struct store *s, const struct event_rec *e);
/* Pending events due at or before now, soonest first (an index probe: a
 * pass with nothing due costs one lookup however many cases are open). */
enum store_rc store_event_due(struct store *s, long long now, int limit,
    int (*cb)(const struct event_rec *e, void *arg), void *arg);
enum store_rc store_event_mark(struct store *s, long long id, long long fired, const char *note);
/* Moves a pending event of this kind to a new time (resolution clock resumed). */
enum store_rc store_event_reschedule(struct store *s, long long case_id, const char *kind,
    long long due);
/* One event, as it is now (a batch read outside a transaction may be stale). */
enum store_rc store_event_get(struct store *s, long long id, struct event_rec *out);
/* Cancels every pending event of the case with this note. */
enum store_rc store_event_cancel_pending(struct store *s, long long case_id, const char *note);
/* Pending again: events cancelled with `note` whose time has not come. */
enum store_rc store_event_rearm(struct store *s, long long case_id, const char *note, long long now);
/* All events of a case, by due time. */
enum store_rc store_event_list(struct store *s, long long case_id,
    int (*cb)(const struct event_rec *e, void *arg), void *arg);

/* ---- pauses of the resolution clock, for `sla explain` ---- */
enum store_rc store_pause_add(struct store *s, long long case_id, long long start, long long end);
enum store_rc store_pause_list(struct store *s, long long case_id,
    int (*cb)(long long start, long long end, void *arg), void *arg);

/* ---- stats: counts for helpgatectl stats ----
 * Every count is over rows at or after `since` (Unix seconds; 0: all),
 * except the outbox backlog, which is the state now.  Names in the lists
 * are NUL-terminated and cut to their field; the lists are ordered by
 * count, largest first, then by name, and owned by the record
 * (store_stats_clear frees them). */
struct store_count {
	char		name[64];
	long long	n;
};

struct store_stats {
	long long		 messages;	/* client messages ("in") the milter tagged */
	long long		 urgency[5];	/* ... by their own urgency, [1]..[4] */
	struct store_count	*category;	/* ... by category */
	size_t			 ncategory;
	int			 degraded_known;	/* the schema marks degraded mail */
	long long		 degraded;	/* messages replayed from the degraded spool */
	struct store_count	*ack_state;	/* acknowledgements by outbox state
						 * ("sent", "pending", "sending", "failed") */
	size_t			 nack_state;
	struct store_count	*ack_skip;	/* "skip:<reason>" decisions by reason */
	size_t			 nack_skip;
	struct store_count	*verdict;	/* diagnoses that ran, by verdict */
	size_t			 nverdict;
	struct store_count	*diag_skip;	/* diagnoses skipped, by reason */
	size_t			 ndiag_skip;
	long long		 outbox_queued;	/* waiting for a first try, or being sent */
	long long		 outbox_deferred;	/* tried, failed temporarily, will retry */
	long long		 outbox_failed;	/* given up (created at or after since) */
	long long		 outbox_oldest;	/* created of the oldest waiting row; 0 none */
};

/* Fills *out (cleared first; clear it with store_stats_clear even on error). */
enum store_rc store_stats(struct store *s, long long since, struct store_stats *out);
void	store_stats_clear(struct store_stats *st);

/* ---- the mail-settings diagnosis (issue 5): schema v4 ---- */

/* A customer's mail client settings, kept beside the customer record (same
 * address key) so that `customer add` never loses them.  The password is
 * never stored: only the path of a 0600 file holding it.  port 0 / host ""
 * means "not set". */
struct customer_mail {
	char		address[320];	/* the customer key: "user@x" or "@x" */
	char		smtp_host[256];
	int		smtp_port;
	char		smtp_security[16];	/* "tls", "starttls", "none" */
	char		smtp_user[320];
	char		smtp_password_file[1024];
	char		imap_host[256];
	int		imap_port;
	char		imap_security[16];
	char		imap_user[320];
	char		imap_password_file[1024];
	long long	updated;
};

/* Inserts or replaces the settings of c->address (normalised). */
enum store_rc store_customer_mail_put(struct store *s, const struct customer_mail *c);
/* Exact address first, then "@domain"; STORE_NOTFOUND if neither. */
enum store_rc store_customer_mail_lookup(struct store *s, const char *address,
    struct customer_mail *out);
/* STORE_NOTFOUND when there were none.  (Removing the customer removes them too.) */
enum store_rc store_customer_mail_remove(struct store *s, const char *address);

/* One diagnosis of a case (one row per protocol), or a recorded skip. */
struct diagnosis_rec {
	long long	id;
	long long	case_id;
	char		customer[320];	/* rate-limit key: "@" and the sender's domain */
	char		client[320];	/* the sender */
	long long	created;
	char		protocol[8];	/* "smtp", "imap" */
	char		host[256];
	int		port;
	char		security[16];
	char		source[32];	/* "customer record", "client's message", "sender domain" */
	char		skipped[64];	/* why it did not run ("" = it ran) */
	char		verdict[32];
	char		hint[256];
	char		alt_host[256];	/* "" = no working alternative */
	int		alt_port;
	char		alt_security[16];
	int		alt_verified;
	char		provider[256];	/* incident key: the SMTP host's domain */
	long long	incident;	/* id of the first diagnosis of the incident; 0 = none */
	char		client_note[32];	/* "", "ack", "follow-up", "no:<why>" */
	long		duration_ms;
	char	       *report_json;	/* heap, owned (diagnosis_rec_clear); may be NULL */
	char	       *report_text;
};

void	diagnosis_rec_clear(struct diagnosis_rec *d);
/* Adds d (d->id set).  STORE_EXISTS when the case already has one for
 * this protocol. */
enum store_rc store_diagnosis_add(struct store *s, struct diagnosis_rec *d);
/* A case's diagnoses, oldest first, reports loaded. */
enum store_rc store_diagnosis_list(struct store *s, long long case_id,
    int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg);
/* Cases in category outgoing-mail with id > after and no diagnosis row
 * yet, oldest first, at most limit: a walk of a partial index, so a pass
 * with nothing new costs one probe. */
enum store_rc store_diagnosis_pending(struct store *s, long long after, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg);
/* Diagnoses that ran for this customer key at or after since. */
enum store_rc store_diagnosis_count_since(struct store *s, const char *customer,
    long long since, int *count);
/* Diagnoses that ran with this provider and verdict at or after since,
 * oldest first (reports not loaded). */
enum store_rc store_diagnosis_similar(struct store *s, const char *provider, const char *verdict,
    long long since, int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg);
enum store_rc store_diagnosis_set_incident(struct store *s, long long id, long long incident);
enum store_rc store_diagnosis_set_client_note(struct store *s, long long id, const char *note);
/* One stored message by its row id. */
enum store_rc store_message_get(struct store *s, long long id, struct message_rec *out);

/* ---- the support mailbox the worker reconciles (issue 14): schema v6 ---- */

/* STORE_OK when key (a Maildir file's unique part, "UIDVALIDITY/UID") of
 * mailbox was read by an earlier pass, STORE_NOTFOUND when not. */
enum store_rc store_mailbox_seen(struct store *s, const char *mailbox, const char *key);
/* Records it as read (again: nothing changes). */
enum store_rc store_mailbox_mark(struct store *s, const char *mailbox, const char *key,
    long long now);
/* The largest UID recorded as "uidvalidity/UID" for mailbox; 0 if none. */
enum store_rc store_mailbox_last_uid(struct store *s, const char *mailbox,
    unsigned long uidvalidity, unsigned long *last_uid);

/* ---- staff commands by mail (issue 15): schema v7 ----
 * The milter records the commands an authenticated staff member wrote at
 * the top of a mail (mailcmd.h); the worker carries them out and answers;
 * helpgatectl case show lists them with who sent them and what became of
 * them. */
struct mailcmd_rec {
	long long	id;
	long long	case_id;		/* 0: the mail named no case */
	char		staff[320];		/* who: the authenticated address */
	char		login[128];		/* the SASL login; "" for StaffNetwork */
	char		message_id[256];	/* the staff member's message */
	char		subject[256];
	char		commands[4096];		/* the lines as written, "\n"-separated */
	long long	received;
	long long	done;			/* 0 until the worker carried them out */
	char		result[4096];		/* per line: what was done, or the error */
};

/* Adds one (m->id set); the same message_id twice is STORE_OK and adds
 * nothing (a message the MTA retried), m->id then 0. */
enum store_rc store_mailcmd_add(struct store *s, struct mailcmd_rec *m);
/* Not yet carried out, oldest first. */
enum store_rc store_mailcmd_pending(struct store *s, int limit,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg);
/* STORE_NOTFOUND when they were carried out already (by another worker:
 * the caller rolls its transaction back). */
enum store_rc store_mailcmd_done(struct store *s, long long id, long long done,
    const char *result);
/* Of one case, oldest first. */
enum store_rc store_mailcmd_list(struct store *s, long long case_id,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg);

/* ---- several hosts on one database (issue 16): schema v8 ---- */

/* Takes up to limit outbox rows that are due for this worker: each moves
 * to "sending" with next_attempt = lease_until (attempts + 1, unless the
 * relay already has it) in the statement that picks it, so two workers
 * never take the same row, and a row whose worker died is taken again
 * when its lease runs out.  Content loaded as for store_outbox_due. */
enum store_rc store_outbox_claim(struct store *s, long long now, long long lease_until,
    int limit, int (*cb)(struct outbox_rec *o, void *arg), void *arg);
/* A lease on a piece of work (what, key) for holder until `until`:
 * STORE_OK when taken (free, expired at now, or already holder's),
 * STORE_EXISTS when another holder has it. */
enum store_rc store_claim(struct store *s, const char *what, long long key,
    const char *holder, long long now, long long until);
enum store_rc store_claim_release(struct store *s, const char *what, long long key,
    const char *holder);

/* Copies every customer, case, message, outbox row, event, pause,
 * diagnosis, mailbox mark and staff command of `from` into the empty store
 * `to` (ids kept), in one transaction on each: one consistent snapshot
 * read, all or nothing written.  Each table is checked by counts (source,
 * copied, destination), reported through progress, and a mismatch fails
 * the copy.  STORE_EXISTS (message in `to`) when `to` is not empty. */
enum store_rc store_copy(struct store *from, struct store *to,
    void (*progress)(const char *table, long long source, long long copied, long long dest,
    void *arg), void *arg);

#endif
