/*
 * diag_int - what the protocol probes (diag_smtp.c, diag_imap.c) share:
 * the report builder, the bounded connection with its TLS layer, and the
 * resolve-and-connect step.  Internal to shared/diag*.c; callers use diag.h.
 *
 * Time: every wait is against a deadline in CLOCK_MONOTONIC milliseconds;
 * a step's deadline is now + step_ms, never past the whole diagnosis.
 */
#ifndef HG_DIAG_INT_H
#define HG_DIAG_INT_H

#include <stddef.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "diag.h"

/* ---------------------------------------------------------------- report */

long long dg_now_ms(void);

/* Secrets to redact from everything recorded in the report (the password,
 * its base64 forms); set by the probe for the duration of one call. */
extern _Thread_local const char *dg_redact[4];

/* Server text for the report: one line, control/non-ASCII as '?', capped,
 * secrets as "***".  Caller frees. */
char	*dg_sanitise(const char *s, size_t len);
/* Appends a step; start 0 records no duration.  Name and detail sanitised. */
struct diag_step *dg_step_add(struct diag_report *r, long long start, int ok,
    const char *detail, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sets the verdict and the advice (copied; NULL for none); returns v. */
enum diag_verdict dg_finish(struct diag_report *r, enum diag_verdict v, const char *advice);

/* ------------------------------------------------------------ connection */

struct conn {
	int			 fd;
	gnutls_session_t	 tls;		/* NULL while plain */
	gnutls_certificate_credentials_t cred;
	long long		 deadline;	/* the whole diagnosis */
	long			 step_ms;
	char			 rbuf[4096];	/* plain-text read-ahead */
	size_t			 rlen;
	gnutls_x509_trust_list_t ca_list;	/* DiagnoseCAFile, may be NULL */
	int			 ca_error;	/* loading ca_file failed: GnuTLS error */
	char			 first[128];	/* the peer's first bytes under TLS */
	size_t			 first_len;
};

/* Sets up c for target t: fd -1, deadline from start and t->timeout_ms. */
void	dg_conn_init(struct conn *c, const struct diag_target *t, long long start);
long long dg_step_deadline(const struct conn *c);
/* poll one fd until deadline; 1 ready, 0 timeout, -1 error. */
int	dg_wait_fd(int fd, short events, long long deadline);
/* When >= 0, every wait of this thread (dg_wait_fd, the resolver) also
 * ends, as a timeout, once this fd is readable: diag_alt.c stops the
 * probes it no longer needs this way.  -1 by default. */
extern _Thread_local int dg_cancel_fd;
/* Writes all of data; 0 ok, -1 error or timeout. */
int	dg_conn_write(struct conn *c, const char *data, size_t len, long long deadline);
/* Reads some bytes into c->rbuf; 1 got data, 0 timeout, -1 closed/error. */
int	dg_conn_fill(struct conn *c, long long deadline);
void	dg_conn_close(struct conn *c);

/*
 * Resolves t->host, checks every address against the allow list, and
 * connects to the first that answers.  Records the steps; on failure sets
 * the verdict (dns_not_found, connect_refused, connect_timeout, or
 * protocol_error with not_allowed) and returns it.  DIAG_OK: c->fd is open.
 */
enum diag_verdict dg_connect(const struct diag_target *t, struct diag_report *r, struct conn *c);

/* ------------------------------------------------------------------- TLS */

/* Loads the system trust store once per process; call before the clock. */
void	dg_trust_init(void);
/* Loads t->ca_file into c (once per connection); errors in c->ca_error. */
void	dg_ca_load(struct conn *c, const struct diag_target *t);
/* Handshake on c->fd; 0, or the GnuTLS error (timeout: GNUTLS_E_TIMEDOUT). */
int	dg_tls_start(struct conn *c, const char *sni);
/* After a handshake: fills r->tls, records the certificate step; DIAG_OK or
 * cert_expired / cert_untrusted / cert_hostname_mismatch. */
enum diag_verdict dg_tls_check(struct conn *c, const struct diag_target *t, struct diag_report *r);
const char *dg_tls_advice(enum diag_verdict v);
int	dg_host_is_ip(const char *h);

/* What differs between the protocols in the TLS step. */
struct dg_tls_proto {
	/* Do the peer's first bytes on an implicit-TLS port come from a
	 * plain-text server of this protocol rather than TLS? */
	int		(*looks_plain)(const char *first, size_t len);
	const char	*mismatch_advice;	/* for tls_mode_mismatch */
};
/* Handshake, CA-file note, certificate check; records the steps.  DIAG_OK,
 * or the verdict set: greeting_timeout, tls_mode_mismatch,
 * tls_handshake_failed or a certificate verdict. */
enum diag_verdict dg_tls_step(struct conn *c, const struct diag_target *t, struct diag_report *r,
    int implicit, const struct dg_tls_proto *p);
/* After a greeting timeout without TLS: does the port speak implicit TLS?
 * Tries a short handshake on c. */
int	dg_speaks_tls(struct conn *c, const struct diag_target *t);

/* ----------------------------------------------------------------- probe */

/*
 * The start of a probe (c and *r are reset): *start after loading the
 * trust store when TLS may be needed, r->protocol, the connection, the
 * password to redact.  -1, with the verdict set, when t has no host or
 * port.  Either way dg_probe_end() finishes.
 */
int	dg_probe_begin(const struct diag_target *t, struct diag_report *r, const char *protocol,
    struct conn *c, long long *start);
/* Closes c, forgets the secrets, records the duration. */
void	dg_probe_end(struct conn *c, struct diag_report *r, long long start);

/* ------------------------------------------------------------ auth hints */

/* A known provider case of a failed login: any needle (case-insensitive)
 * in the server's text gives the hint. */
struct dg_hint {
	const char	*needles[8];	/* up to the first NULL */
	const char	*hint;
};
#define DG_HINT_APP_PASSWORD_TEXT "application password required (the account uses two-step verification)"
/* The rows SMTP and IMAP share. */
#define DG_HINT_APP_PASSWORD { { "application-specific password", "app password", "application password", \
	"app-specific password", "InvalidSecondFactor" }, DG_HINT_APP_PASSWORD_TEXT }
#define DG_HINT_WEB_LOGIN { { "WebLoginRequired", "web browser" }, \
	"the provider requires a login through the web browser first" }
/* The hint of the first row that matches text, in a table ended by a row
 * without hint; NULL for none. */
const char *dg_auth_hint(const struct dg_hint *table, const char *text);

/* Wipes and frees a secret; NULL is fine. */
void	dg_wipe_free(char *s);

/* Base64 of in (no line breaks); caller frees (and wipes, for secrets). */
char	*dg_b64(const unsigned char *in, size_t len);

#endif
