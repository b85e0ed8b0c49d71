/*
 * ack - the first lesson of support: tell the client at once that they were
 * heard, which case they have, and when a person will answer.
 *
 * ack_run() takes the messages the worker has not decided about yet and, for
 * each, in one transaction: decides (acknowledge, or skip with a reason),
 * renders the acknowledgement from conf/templates in the client's language,
 * and puts it in the outbox — or records why not.  A new P1 case also puts
 * a notice for EscalationAddress in the outbox.  Sending is outbox.c's job;
 * nothing here talks to the network, so a crash at any point leaves either
 * no decision (redone after restart) or a committed one (never redone).
 */
#ifndef HG_ACK_H
#define HG_ACK_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "store.h"

struct ack_ctx;

/* Compiles the no-reply patterns and reads the templates; NULL with err
 * when a template is missing or broken. */
struct ack_ctx	*ack_ctx_new(const struct config *cfg, char *err, size_t errlen);
void		 ack_ctx_free(struct ack_ctx *a);	/* accepts NULL */
/* Reads (or makes, the first time) SealKeyFile, so that every letter is
 * sealed (seal.h).  Call it as the user the daemons run as: the key must
 * not end up owned by root.  Without it letters go out unsealed and
 * helpgate-milter treats their X-Helpgate-* headers as a stranger's. */
int		 ack_load_seal(struct ack_ctx *a, char *err, size_t errlen);
/* Whether m's X-Helpgate-Seal seals it under the key: one of helpgate's
 * own letters, whatever its age (the mailbox pass skips them). */
struct msg;
int		 ack_seal_valid(const struct ack_ctx *a, const struct msg *m);
/* The key letters are sealed with, or NULL when ack_load_seal failed. */
struct seal_key;
const struct seal_key *ack_seal_key(const struct ack_ctx *a);

/* Decides about at most limit undecided messages; returns how many it
 * handled, or -1 when the store failed (logged). */
int	ack_run(struct ack_ctx *a, struct store *s, time_t now, int limit);

/* For tests and `config check`: renders every template once with sample
 * values.  0, or -1 with the first problem in err. */
int	ack_check_templates(struct ack_ctx *a, char *err, size_t errlen);

/* A notice to staff about case c, rendered from TemplatesDir/<template_kind>.en.txt
 * (variables as for acknowledgements, plus {{event}} and {{assignee}}), ready
 * for the outbox.  0, or -1 with err. */
struct ack_notice_spec {
	const char	*template_kind;	/* "notice-p1", "notice-sla", ... */
	const char	*tag;		/* in the Message-ID and X-Helpgate-Notice */
	const char	*headline;	/* subject: "[HG-n] <headline>: P1 ..." */
	const char	*recipient;
	const char	*event;		/* one sentence: what happened */
	long long	 deadline;	/* shown as {{due_local}}; 0: the first-response deadline */
};
int	ack_notice(struct ack_ctx *a, const struct case_rec *c, const struct ack_notice_spec *n,
	    time_t now, struct outbox_rec *o, char *err, size_t errlen);
const struct config *ack_config(const struct ack_ctx *a);

/* Puts in the outbox the message that closes the loop with the client
 * (template close.<lang>.txt: it works now? how to reach us), in the thread
 * of their first message.  Call inside the caller's transaction.  0, or -1
 * with err. */
int	ack_close_loop(struct ack_ctx *a, struct store *s, const struct case_rec *c, time_t now,
	    char *err, size_t errlen);

/* Records mail just queued for the client (message_id, a short subject
 * such as "acknowledgement") as an outgoing message of case c, so that the
 * client's reply to it threads into the case.  Call inside the caller's
 * transaction; store_message_add's result (STORE_EXISTS: already there). */
enum store_rc ack_record_sent(struct store *s, const struct case_rec *c,
	    const char *message_id, const char *subject, time_t now);

/* ---- the diagnosis (issue 5, diagnose.c) ---- */

/* Why nobody should get automatic mail at address ("no-address", "staff",
 * "support-address", "no-reply-sender"), or NULL: the acknowledgement's
 * rules, for the diagnosis to follow. */
const char *ack_nobody_to_answer(const struct ack_ctx *a, const char *address);

/* The note to staff about one diagnosis (template notice-diagnosis.en.txt;
 * subject "[HG-n] Diagnosis: <verdict> — <target>", headers
 * X-Helpgate-Diagnosis and X-Helpgate-Case).  Every string is already
 * free of secrets; "" for none. */
struct ack_diagnosis {
	const char	*recipient;
	const char	*verdict;
	const char	*target;	/* "smtp.example.com:587 starttls, user u" */
	const char	*target_short;	/* "smtp.example.com:587" */
	const char	*source;	/* "customer record", ... */
	const char	*report;	/* the check list(s) */
	const char	*alternative;	/* "smtp.example.com:465 tls, verified" or "" */
	const char	*incident;	/* "Incident: 3 clients of ... (cases HG-1, ...)" or "" */
	const char	*client_note;	/* what the client is told, or "" */
	long long	 incident_id;	/* 0: none */
};
int	ack_diagnosis_note(struct ack_ctx *a, const struct case_rec *c,
	    const struct ack_diagnosis *d, time_t now, struct outbox_rec *o, char *err,
	    size_t errlen);

/* A setting that works now, for the client: {{alternative}} in the
 * acknowledgement, or a short follow-up in the client's thread (template
 * alternative.<lang>.txt, RFC 3834 headers as the acknowledgement) when
 * the acknowledgement already went.  security: "tls", "starttls", "none". */
struct ack_alternative {
	const char	*host;
	int		 port;
	const char	*security;
};
int	ack_alternative_followup(struct ack_ctx *a, const struct case_rec *c,
	    const struct message_rec *first, const struct ack_alternative *alt, time_t now,
	    struct outbox_rec *o, char *err, size_t errlen);

/* The answer to a staff member's commands by mail (mailcmd_run.c):
 * template command-answer.en.txt with {{event}} = answer (what became of
 * each command), to m->staff only, in the thread of their mail
 * (In-Reply-To), Auto-Submitted: auto-replied.  c may be NULL (the mail
 * named no case).  0, or -1 with err. */
int	ack_command_answer(struct ack_ctx *a, const struct case_rec *c, const struct mailcmd_rec *m,
	    const char *answer, time_t now, struct outbox_rec *o, char *err, size_t errlen);

/* "Re: [HG-12] Original" from the case number and the client's subject:
 * reply prefixes and an old tag are not repeated.  Caller frees. */
char   *ack_subject(long long case_id, const char *subject);

#endif
