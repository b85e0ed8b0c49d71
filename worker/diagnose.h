/*
 * diagnose - the automatic diagnosis of every new case in category
 * outgoing-mail (issue 5, "Where it runs").
 *
 * The worker's loop calls diagnose_run() once a pass.  It finds the cases
 * not diagnosed yet (store_diagnosis_pending: an index walk from the last
 * case seen, so an idle pass costs one probe), decides where the settings
 * come from (the customer record, else what the client wrote, else the
 * sender's domain), applies DiagnosePerCustomerPerHour, and hands each run
 * to a small pool of threads (DiagnoseConcurrency).  The probes are slow
 * by nature (a silent server costs DiagnoseTimeout), so they never run on
 * the loop: acknowledgements, timers and the outbox go on meanwhile.
 *
 * The threads never touch the store (a handle is single-threaded): they
 * get a job with everything copied in, read the password file themselves
 * (and wipe it), and put the finished job on a mutex-protected queue.  The
 * next diagnose_run() writes each finished job in one transaction: the
 * diagnosis rows (report, verdict, alternative, incident), the note to
 * staff and, when a setting works and DiagnoseTellClient allows, the
 * client's follow-up.  A skipped run is recorded with its reason.
 *
 * Crash safety: nothing is recorded until a run is finished, so a worker
 * killed mid-run diagnoses those cases again after the restart.
 */
#ifndef HG_DIAGNOSE_H
#define HG_DIAGNOSE_H

#include <time.h>

#include "ack.h"
#include "store.h"

struct buf;
struct config;
struct diag_target;
struct diagnose_ctx;

struct diagnose_ctx *diagnose_new(void);
/* Stops the pool: queued runs are dropped (found again after a restart);
 * running ones get a short grace, then are left to die with the process.
 * Accepts NULL. */
void	diagnose_free(struct diagnose_ctx *d);

/* Records finished runs and starts new ones; the config is ack_config(a).
 * Returns how many runs it recorded or started (0: nothing to do), or -1
 * when the store failed (logged). */
int	diagnose_run(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, time_t now);

/* The part of a target every probe shares, from the config (helpgatectl
 * diagnose uses it too): DiagnoseTimeout, DiagnoseCAFile, ProbeAllow and
 * DiagnoseResolver, copied into t (diag_target_free frees them). */
void	diagnose_target_config(struct diag_target *t, const struct config *cfg);
/* DiagnosePorts back in its config syntax, "587/starttls 465/tls ...";
 * initialises out, the caller frees it. */
void	diagnose_ports_text(const struct config *cfg, struct buf *out);

#endif
