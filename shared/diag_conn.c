/*
 * diag_conn - the bounded connection the probes share: resolve and connect
 * under the allow list, non-blocking I/O against deadlines, and TLS with
 * the certificate checks (see diag_int.h).
 *
 * All I/O is non-blocking with poll() against a per-step deadline that is
 * never later than the deadline of the whole diagnosis.  TLS goes through
 * our own push/pull functions so that send() uses MSG_NOSIGNAL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "diag.h"
#include "diag_dns.h"
#include "diag_int.h"
#include "xalloc.h"

void
dg_conn_init(struct conn *c, const struct diag_target *t, long long start)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->deadline = start + (t->timeout_ms > 0 ? t->timeout_ms : DIAG_TIMEOUT_DEFAULT_MS);
	c->step_ms = t->step_timeout_ms > 0 ? t->step_timeout_ms : DIAG_STEP_TIMEOUT_DEFAULT_MS;
}

/* ------------------------------------------------------------ connection */

/* The deadline for one step: now + step_ms, never past the whole deadline. */
long long
dg_step_deadline(const struct conn *c)
{
	long long d = dg_now_ms() + c->step_ms;
	return d < c->deadline ? d : c->deadline;
}

_Thread_local int dg_cancel_fd = -1;

/* poll one fd until deadline; 1 ready, 0 timeout (or cancelled), -1 error. */
int
dg_wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p[2];
	long long left;
	int n;

	for (;;) {
		left = deadline - dg_now_ms();
		if (left <= 0)
			return 0;
		p[0].fd = fd;
		p[0].events = events;
		p[0].revents = 0;
		p[1].fd = dg_cancel_fd;	/* poll ignores a negative fd */
		p[1].events = POLLIN;
		p[1].revents = 0;
		n = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (p[1].revents)
			return 0;
		if (n > 0)
			return 1;
	}
}

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct conn *c = p;
	ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return n;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct conn *c = p;
	ssize_t n = recv(c->fd, data, len, 0);

	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	else if (n > 0 && c->first_len < sizeof(c->first) - 1) {
		/* kept to recognise a plain-text server behind a failed handshake */
		size_t k = sizeof(c->first) - 1 - c->first_len;
		if (k > (size_t)n)
			k = (size_t)n;
		memcpy(c->first + c->first_len, data, k);
		c->first_len += k;
		c->first[c->first_len] = '\0';
	}
	return n;
}

/* Writes all of data; 0 ok, -1 error or timeout. */
int
dg_conn_write(struct conn *c, const char *data, size_t len, long long deadline)
{
	ssize_t n;

	while (len > 0) {
		if (c->tls) {
			n = gnutls_record_send(c->tls, data, len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				if (dg_wait_fd(c->fd, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN, deadline) <= 0)
					return -1;
				continue;
			}
			if (n < 0)
				return -1;
		} else {
			n = send(c->fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				if (dg_wait_fd(c->fd, POLLOUT, deadline) <= 0)
					return -1;
				continue;
			}
			if (n < 0)
				return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads some bytes into c->rbuf; 1 got data, 0 timeout, -1 closed/error. */
int
dg_conn_fill(struct conn *c, long long deadline)
{
	ssize_t n;
	size_t room = sizeof(c->rbuf) - c->rlen;

	if (room == 0)
		return -1;
	for (;;) {
		if (c->tls) {
			n = gnutls_record_recv(c->tls, c->rbuf + c->rlen, room);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				int w = dg_wait_fd(c->fd, POLLIN, deadline);
				if (w <= 0)
					return w;
				continue;
			}
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, room, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				int w = dg_wait_fd(c->fd, POLLIN, deadline);
				if (w <= 0)
					return w;
				continue;
			}
		}
		if (n <= 0)
			return -1;
		c->rlen += (size_t)n;
		return 1;
	}
}

/* One SMTP reply: code (or -1 if not a reply), all lines in text. */
/* ------------------------------------------------------------------ TLS */

/* Handshake on c->fd; returns 0, or the GnuTLS error (timeout: GNUTLS_E_TIMEDOUT). */
/*
 * Trust: the handshake runs with credentials that trust nothing (GnuTLS
 * does not verify during the handshake unless asked), and dg_tls_check()
 * verifies the chain afterwards against the system store and, separately,
 * DiagnoseCAFile.  The system store is loaded once per process (90 ms,
 * 250 ms under ASan: inside a step it would break the step's timeout) and
 * only read afterwards, which GnuTLS trust lists allow from any thread.
 */
static pthread_once_t sys_trust_once = PTHREAD_ONCE_INIT;
static gnutls_x509_trust_list_t sys_trust;

static void
sys_trust_load(void)
{
	if (gnutls_x509_trust_list_init(&sys_trust, 0) < 0) {
		sys_trust = NULL;
		return;
	}
	if (gnutls_x509_trust_list_add_system_trust(sys_trust, 0, 0) < 0) {
		gnutls_x509_trust_list_deinit(sys_trust, 1);
		sys_trust = NULL;
	}
}

void
dg_trust_init(void)
{
	pthread_once(&sys_trust_once, sys_trust_load);
}

/* The CA file, loaded per diagnosis (it may change with a reload). */
void
dg_ca_load(struct conn *c, const struct diag_target *t)
{
	int n;

	if (c->ca_list || !t->ca_file || !*t->ca_file)
		return;
	gnutls_x509_trust_list_init(&c->ca_list, 0);
	n = gnutls_x509_trust_list_add_trust_file(c->ca_list, t->ca_file, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (n <= 0)
		c->ca_error = n < 0 ? n : GNUTLS_E_NO_CERTIFICATE_FOUND;
}

int
dg_tls_start(struct conn *c, const char *sni)
{
	long long d = dg_step_deadline(c);
	int ret;

	if (!c->cred)
		gnutls_certificate_allocate_credentials(&c->cred);
	gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	gnutls_set_default_priority(c->tls);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
	if (sni)
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_push_function(c->tls, tls_push);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	for (;;) {
		ret = gnutls_handshake(c->tls);
		if (ret == GNUTLS_E_SUCCESS)
			return 0;
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			int w = dg_wait_fd(c->fd, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN, d);
			if (w == 0)
				return GNUTLS_E_TIMEDOUT;
			if (w < 0)
				return GNUTLS_E_PULL_ERROR;
			continue;
		}
		if (!gnutls_error_is_fatal(ret))
			continue;
		return ret;
	}
}

void
dg_conn_close(struct conn *c)
{
	if (c->tls) {
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);	/* non-blocking: best effort */
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->cred) {
		gnutls_certificate_free_credentials(c->cred);
		c->cred = NULL;
	}
	if (c->ca_list) {
		gnutls_x509_trust_list_deinit(c->ca_list, 1);
		c->ca_list = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rlen = 0;
}

static char *
dn_string(gnutls_x509_crt_t crt, int issuer)
{
	gnutls_datum_t d = { NULL, 0 };
	char *s;

	if ((issuer ? gnutls_x509_crt_get_issuer_dn2(crt, &d) : gnutls_x509_crt_get_dn2(crt, &d)) < 0)
		return xstrdup("?");
	s = dg_sanitise((const char *)d.data, d.size);
	gnutls_free(d.data);
	return s;
}

int
dg_host_is_ip(const char *h)
{
	unsigned char tmp[16];
	return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

#define CHAIN_MAX	16

static unsigned int
chain_status(gnutls_x509_trust_list_t list, gnutls_x509_crt_t *chain, unsigned int n)
{
	unsigned int status = 0;

	if (!list)
		return GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
	if (gnutls_x509_trust_list_verify_crt(list, chain, n, 0, &status, NULL) < 0)
		return GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
	return status;
}

/*
 * After a handshake: fills r->tls and records the certificate step.
 * Returns DIAG_OK or the certificate verdict.
 */
enum diag_verdict
dg_tls_check(struct conn *c, const struct diag_target *t, struct diag_report *r)
{
	long long start = dg_now_ms();
	const gnutls_datum_t *certs;
	unsigned int ncerts = 0, status = 0, i;
	gnutls_x509_crt_t chain[CHAIN_MAX], crt;
	struct buf d;
	const char *ver;
	enum diag_verdict v = DIAG_OK;

	ver = gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls));
	free(r->tls.version);
	r->tls.version = xstrdup(ver ? ver : "?");
	r->tls.used = 1;
	certs = gnutls_certificate_get_peers(c->tls, &ncerts);
	if (!certs || ncerts == 0) {
		dg_step_add(r, start, 0, "the server sent no certificate", "certificate");
		r->tls.trusted = 0;
		return DIAG_CERT_UNTRUSTED;
	}
	if (ncerts > CHAIN_MAX)
		ncerts = CHAIN_MAX;
	for (i = 0; i < ncerts; i++) {
		gnutls_x509_crt_init(&chain[i]);
		if (gnutls_x509_crt_import(chain[i], &certs[i], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(chain[i]);
			if (i == 0) {
				dg_step_add(r, start, 0, "unreadable certificate", "certificate");
				return DIAG_TLS_HANDSHAKE_FAILED;
			}
			break;
		}
	}
	ncerts = i;
	crt = chain[0];
	free(r->tls.subject);
	free(r->tls.issuer);
	r->tls.subject = dn_string(crt, 0);
	r->tls.issuer = dn_string(crt, 1);
	{
		time_t exp = gnutls_x509_crt_get_expiration_time(crt);
		time_t now = time(NULL);
		long long diff = (long long)exp - (long long)now;
		r->tls.days_to_expiry = (long)(diff / 86400);	/* -1: expired a day ago */
		if (diff < 0 && r->tls.days_to_expiry == 0)
			r->tls.days_to_expiry = -1;	/* expired today still reads as expired */
	}
	r->tls.hostname_ok = gnutls_x509_crt_check_hostname(crt, t->host) != 0;

	/* the chain and dates, against each store; the host name is judged
	 * separately above so that a wrong name and an unknown CA stay apart */
	status = chain_status(sys_trust, chain, ncerts);
	if (status && c->ca_list) {
		unsigned int st2 = chain_status(c->ca_list, chain, ncerts);
		/* prefer the store that knows the issuer */
		if (st2 == 0 || ((status & GNUTLS_CERT_SIGNER_NOT_FOUND) && !(st2 & GNUTLS_CERT_SIGNER_NOT_FOUND)))
			status = st2;
	}
	for (i = 0; i < ncerts; i++)
		gnutls_x509_crt_deinit(chain[i]);
	r->tls.trusted = !(status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA |
	    GNUTLS_CERT_REVOKED | GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_SIGNATURE_FAILURE));

	buf_init(&d, 1024);
	buf_printf(&d, "%s; subject %s; issuer %s; ", r->tls.version, r->tls.subject, r->tls.issuer);
	if (r->tls.days_to_expiry >= 0)
		buf_printf(&d, "expires in %ld days", r->tls.days_to_expiry);
	else
		buf_printf(&d, "expired %ld days ago", -r->tls.days_to_expiry);
	if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED) || r->tls.days_to_expiry < 0) {
		v = DIAG_CERT_EXPIRED;
		buf_append_str(&d, (status & GNUTLS_CERT_NOT_ACTIVATED) ? "; NOT YET VALID" :
		    (status & GNUTLS_CERT_EXPIRED) && r->tls.days_to_expiry >= 0 ?
		    "; a certificate in the chain has EXPIRED" : "; EXPIRED");
	} else if (!r->tls.trusted || (status & GNUTLS_CERT_INVALID)) {
		gnutls_datum_t out = { NULL, 0 };
		v = DIAG_CERT_UNTRUSTED;
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
			buf_append_str(&d, "; ");
			buf_append(&d, out.data, out.size);
			gnutls_free(out.data);
		} else
			buf_append_str(&d, "; not trusted");
	} else if (!r->tls.hostname_ok) {
		v = DIAG_CERT_HOSTNAME_MISMATCH;
		buf_printf(&d, "; does not name %s", t->host);
	}
	dg_step_add(r, start, v == DIAG_OK, buf_str(&d), "certificate");
	buf_free(&d);
	return v;
}

const char *
dg_tls_advice(enum diag_verdict v)
{
	switch (v) {
	case DIAG_CERT_EXPIRED:
		return "The server's certificate has expired (or is not yet valid): the server's administrator must renew it; mail clients will refuse it until then.";
	case DIAG_CERT_UNTRUSTED:
		return "The server's certificate is not signed by a trusted authority (self-signed or missing intermediate): install a certificate from a public CA with its full chain.";
	case DIAG_CERT_HOSTNAME_MISMATCH:
		return "The certificate does not name this host: set the server name the certificate was issued for in the mail client.";
	default:
		return "The TLS handshake failed: check the port and the security setting, and the server's TLS configuration.";
	}
}

/*
 * The TLS step of a probe: handshake (STARTTLS done, or implicit TLS),
 * the CA-file note, and the certificate check.  On failure sets the
 * verdict; a plain-text server on an implicit-TLS port, as recognised by
 * p->looks_plain, gets p->mismatch_advice.
 */
enum diag_verdict
dg_tls_step(struct conn *c, const struct diag_target *t, struct diag_report *r, int implicit,
    const struct dg_tls_proto *p)
{
	long long st = dg_now_ms();
	int ret;
	enum diag_verdict v;

	dg_trust_init();
	dg_ca_load(c, t);
	ret = dg_tls_start(c, dg_host_is_ip(t->host) ? NULL : t->host);
	if (c->ca_error) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: %s (only the system store is used)",
		    t->ca_file, gnutls_strerror(c->ca_error));
		dg_step_add(r, 0, 0, msg, "CA file");
		c->ca_error = 0;
	}
	if (ret != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", ret == GNUTLS_E_TIMEDOUT ? "no TLS answer (timed out)" : gnutls_strerror(ret));
		dg_step_add(r, st, 0, msg, "TLS handshake");
		if (implicit && ret == GNUTLS_E_TIMEDOUT)
			return dg_finish(r, DIAG_GREETING_TIMEOUT,
			    "The server accepted the connection but never answered the TLS handshake: it is overloaded or filtered.");
		if (implicit && p->looks_plain(c->first, c->first_len)) {
			ssize_t n;
			/* the rest of its first line is most likely already here */
			n = recv(c->fd, c->first + c->first_len,
			    sizeof(c->first) - 1 - c->first_len, MSG_DONTWAIT);
			if (n > 0)
				c->first_len += (size_t)n;
			c->first[c->first_len] = '\0';
			c->first[strcspn(c->first, "\r\n")] = '\0';
			dg_step_add(r, 0, 0, c->first, "server sent plain text");
			return dg_finish(r, DIAG_TLS_MODE_MISMATCH, p->mismatch_advice);
		}
		return dg_finish(r, DIAG_TLS_HANDSHAKE_FAILED, dg_tls_advice(DIAG_TLS_HANDSHAKE_FAILED));
	}
	dg_step_add(r, st, 1, NULL, "TLS handshake");
	v = dg_tls_check(c, t, r);
	if (v != DIAG_OK)
		return dg_finish(r, v, dg_tls_advice(v));
	return DIAG_OK;
}

int
dg_speaks_tls(struct conn *c, const struct diag_target *t)
{
	int ret;
	long saved = c->step_ms;

	c->step_ms = 2000;
	ret = dg_tls_start(c, dg_host_is_ip(t->host) ? NULL : t->host);
	c->step_ms = saved;
	/* a ServerHello, or a TLS alert, came back: TLS is spoken there */
	return ret == 0 || ret == GNUTLS_E_FATAL_ALERT_RECEIVED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED ||
	    ret == GNUTLS_E_CERTIFICATE_ERROR || ret == GNUTLS_E_NO_CIPHER_SUITES ||
	    ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
}

/* ----------------------------------------------------------------- probe */

static int
mail_port(const struct diag_target *t, int port)
{
	for (size_t i = 0; i < t->mail_port_count; i++)
		if (t->mail_ports[i] == port)
			return 1;
	return 0;
}

int
dg_probe_begin(const struct diag_target *t, struct diag_report *r, const char *protocol,
    struct conn *c, long long *start)
{
	*start = dg_now_ms();
	/* before the clock starts: the first call in a process pays for it */
	if (t->security != DIAG_SEC_NONE) {
		dg_trust_init();
		*start = dg_now_ms();
	}
	memset(r, 0, sizeof(*r));
	r->protocol = protocol;
	dg_conn_init(c, t, *start);
	dg_redact[0] = t->password;
	dg_redact[1] = dg_redact[2] = dg_redact[3] = NULL;
	if (!t->host || !*t->host || t->port <= 0 || t->port > 65535) {
		dg_step_add(r, 0, 0, "no host or port", "resolve");
		dg_finish(r, DIAG_PROTOCOL_ERROR, "Give the server's host name and port.");
		return -1;
	}
	if (t->untrusted && !mail_port(t, t->port)) {
		struct buf d;

		buf_init(&d, 512);
		buf_printf(&d, "%d is not a mail port: a server named by the sender is probed only on",
		    t->port);
		for (size_t i = 0; i < t->mail_port_count; i++)
			buf_printf(&d, "%s %d", i ? "," : "", t->mail_ports[i]);
		if (t->mail_port_count == 0)
			buf_append_str(&d, " none");
		dg_step_add(r, 0, 0, buf_str(&d), "port not allowed");
		buf_free(&d);
		r->not_allowed = 1;
		dg_finish(r, DIAG_PROTOCOL_ERROR,
		    "That port is not a mail port, so helpgate did not connect to it: submission ports are 587 (STARTTLS) and 465 (SSL/TLS).");
		return -1;
	}
	return 0;
}

void
dg_probe_end(struct conn *c, struct diag_report *r, long long start)
{
	dg_conn_close(c);
	dg_redact[0] = dg_redact[1] = dg_redact[2] = dg_redact[3] = NULL;
	r->duration_ms = (long)(dg_now_ms() - start);
}

/* ------------------------------------------------------------ auth hints */

const char *
dg_auth_hint(const struct dg_hint *table, const char *text)
{
	const struct dg_hint *h;
	size_t i;

	for (h = table; h->hint; h++)
		for (i = 0; i < sizeof(h->needles) / sizeof(h->needles[0]) && h->needles[i]; i++)
			if (strcasestr(text, h->needles[i]))
				return h->hint;
	return NULL;
}

/* --------------------------------------------------------------- base64 */

char *
dg_b64(const unsigned char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = tab[in[i + 2] & 63];
	}
	if (i < len) {
		*o++ = tab[in[i] >> 2];
		if (i + 1 < len) {
			*o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = tab[(in[i + 1] & 15) << 2];
		} else {
			*o++ = tab[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int
tcp_connect(const struct dg_addr *a, long long deadline, int *fdp)
{
	int fd, err = 0, w;
	socklen_t el = sizeof(err);

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0) {
		*fdp = fd;
		return 0;
	}
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return err;
	}
	w = dg_wait_fd(fd, POLLOUT, deadline);
	if (w <= 0) {
		close(fd);
		return w == 0 ? ETIMEDOUT : EIO;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err) {
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

static void
addr_string(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN], port[16];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, outlen, "?");
	else if (sa->sa_family == AF_INET6)
		snprintf(out, outlen, "[%s]:%s", host, port);
	else
		snprintf(out, outlen, "%s:%s", host, port);
}

/* The dialogue after the TCP connection; returns the verdict. */

enum diag_verdict
dg_connect(const struct diag_target *t, struct diag_report *r, struct conn *c)
{
	struct dg_addr *res = NULL, *ai;
	size_t count = 0, i;
	char addr[INET6_ADDRSTRLEN + 48];
	long long st;
	int any_timeout = 0, any_tried = 0, any_refused = 0;
	enum dg_dns_rc rc;
	struct buf addrs;

	/* resolve: c-ares, bounded by the step (DiagnoseResolver or resolv.conf) */
	st = dg_now_ms();
	buf_init(&addrs, 1024);
	rc = dg_dns_addrs(t->host, t->port, t->resolver, dg_step_deadline(c), &res, &count, &addrs);
	if (rc != DG_DNS_OK) {
		dg_step_add(r, st, 0, addrs.len ? buf_str(&addrs) : dg_dns_rc_name(rc), "resolve %s", t->host);
		buf_free(&addrs);
		dg_finish(r, DIAG_DNS_NOT_FOUND, rc == DG_DNS_NOT_FOUND ?
		    "The server name does not resolve: check the spelling of the outgoing server in the mail client." :
		    "The server name could not be resolved (the DNS did not answer): check the name and the network's DNS, then try again.");
		return r->verdict;
	}
	buf_reset(&addrs);
	for (i = 0; i < count; i++) {
		ai = &res[i];
		addr_string((const struct sockaddr *)&ai->sa, ai->len, addr, sizeof(addr));
		if (addrs.len)
			buf_append_str(&addrs, " ");
		buf_append_str(&addrs, addr);
	}
	dg_step_add(r, st, 1, buf_str(&addrs), "resolve %s", t->host);
	buf_free(&addrs);

	for (i = 0; i < count; i++) {
		int err, fd = -1;

		ai = &res[i];
		addr_string((const struct sockaddr *)&ai->sa, ai->len, addr, sizeof(addr));
		/* ProbeAllow is staff's, for staff's targets: never a sender's */
		if (!diag_addr_allowed((const struct sockaddr *)&ai->sa, t->untrusted ? NULL : t->allow,
		    t->untrusted ? 0 : t->allow_count)) {
			dg_step_add(r, 0, 0, t->untrusted ?
			    "address not allowed (loopback, private, link-local, multicast or reserved): a server named by the sender is probed only at public addresses, whatever ProbeAllow says" :
			    "address not allowed (loopback, private, link-local, multicast or reserved; see ProbeAllow)",
			    "connect %s", addr);
			continue;
		}
		if (dg_now_ms() >= c->deadline)
			break;
		any_tried = 1;
		st = dg_now_ms();
		err = tcp_connect(ai, dg_step_deadline(c), &fd);
		if (err) {
			dg_step_add(r, st, 0, err == ETIMEDOUT ? "timed out" : strerror(err), "connect %s", addr);
			if (err == ETIMEDOUT)
				any_timeout = 1;
			else
				any_refused = 1;
			continue;
		}
		dg_step_add(r, st, 1, NULL, "connect %s", addr);
		{
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		c->fd = fd;
		break;
	}
	free(res);
	if (c->fd < 0) {
		if (!any_tried) {
			r->not_allowed = 1;
			dg_finish(r, DIAG_PROTOCOL_ERROR, t->untrusted ?
			    "The server's addresses are private or reserved; helpgate probes a server the sender named only at public addresses." :
			    "The server's addresses are private or reserved; helpgate probes only public servers (ProbeAllow).");
		} else if (any_timeout || !any_refused)
			dg_finish(r, DIAG_CONNECT_TIMEOUT,
			    "No answer from the server on this port: a firewall (often the client's network blocking outgoing SMTP) or a wrong port.");
		else
			dg_finish(r, DIAG_CONNECT_REFUSED,
			    "The server refused the connection on this port: wrong port, or the service is down. Submission ports are 587 (STARTTLS) and 465 (SSL/TLS).");
		return r->verdict;
	}
	return DIAG_OK;
}
