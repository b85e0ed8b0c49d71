/*
 * intake - what happens to one support message: classify it, find or open
 * its case, record it, and say which headers it deserves.
 *
 * Kept apart from libmilter so that it can be unit-tested and fuzzed; the
 * milter only gathers the message and applies the result.  intake_process()
 * never fails: when the store is missing, locked or broken it returns a
 * result with degraded set (and no case), because support mail must flow
 * whatever happens to helpgate.
 */
#ifndef HG_INTAKE_H
#define HG_INTAKE_H

#include <time.h>

#include "classify.h"
#include "config.h"
#include "msg.h"
#include "store.h"

struct intake_input {
	const struct config		*cfg;
	const struct classify_rules	*rules;
	struct store			*store;		/* NULL: store unavailable */
	const struct msg		*msg;
	const char			*envelope_from;	/* as the MTA gave it */
	const char			*support_address;	/* the support recipient */
	const char			*queue_id;	/* MTA queue id or "" */
	time_t				 received;	/* when the MTA accepted it */
	/* The MTA authenticated the sender as staff (config_is_staff_login,
	 * config_is_staff_network): the only way a message counts as staff. */
	int				 staff_authenticated;
	/* NULL or "": the milter saw it; "mailbox": the worker found it in
	 * the support mailbox (recorded as message_rec.via). */
	const char			*via;
};

enum intake_disposition {
	INTAKE_NEW_CASE,	/* a case was opened */
	INTAKE_FOLLOW_UP,	/* joined an existing case */
	INTAKE_DUPLICATE,	/* same Message-ID seen before: nothing recorded */
	INTAKE_NO_CASE,		/* machine-generated mail that threads nowhere */
	INTAKE_DEGRADED,	/* the store failed; nothing recorded */
};

struct intake_result {
	enum intake_disposition	disposition;
	struct classify_result	cls;
	long long		case_id;	/* 0 when there is no case */
	char			client[320];
	char			tier[32];
	int			watch;
	int			staff;		/* the sender is staff (authenticated) */
	int			staff_claim;	/* From or MAIL FROM says staff, the MTA did not */
	char			sender_auth[48];	/* may the From be answered: authres.h,
						 * "verified:<how>" or "unverified:<why>" */
	time_t			first_due;
	char			error[160];	/* why degraded */
	enum store_rc		store_rc;	/* the store's verdict when degraded */
};

/* intake_classify() then intake_record(); the milter calls the two apart so
 * that only the store work runs under its store lock. */
void	intake_process(const struct intake_input *in, struct intake_result *out);
/* Reads the message: content classification and who wrote it (no store). */
void	intake_classify(const struct intake_input *in, struct intake_result *out);
/* Finds or opens the case and records the message; finishes *out. */
void	intake_record(const struct intake_input *in, struct intake_result *out);

/* Mail from authenticated staff to anyone (usually the client): when it
 * carries [HG-<n>] or threads into a case it is recorded there as a staff
 * message and stops the first-response clock.  Nothing else happens to it.
 * Returns the case id, 0 when it belongs to no case, -1 when the store
 * failed. */
long long intake_staff_reply(const struct intake_input *in);
/* Commands an authenticated staff member wrote at the top of a mail
 * (mailcmd.h): recorded for the worker, with the case the mail threads
 * into (0 when none: the worker answers so), in one transaction with the
 * staff reply itself when record_reply (the mail goes on to the client).
 * login: {auth_authen}, or NULL for StaffNetwork.  Returns the case id,
 * 0 without a case, -1 when the store failed (nothing recorded). */
struct mailcmd_list;
long long intake_staff_commands(const struct intake_input *in, const struct mailcmd_list *cmds,
    const char *login, int record_reply);
const char *intake_disposition_name(enum intake_disposition d);

/* The resolution clock of a waiting case runs again from in->received:
 * status open, the pause recorded, the deadline and its warning moved by
 * the clock time it stood.  Used by the milter (the client wrote) and by
 * helpgatectl case reopen. */
enum store_rc intake_resume(const struct intake_input *in, const struct case_rec *c);

/* Finds "[HG-<n>]" in a subject (case-insensitive); returns n or 0. */
long long intake_subject_case(const char *subject);

#endif
