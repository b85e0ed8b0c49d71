/*
 * diag - the SMTP settings probe (see diag.h for the contract).
 *
 * Why plain sockets + GnuTLS and not libcurl CONNECT_ONLY: libcurl hides the
 * EHLO capability list (only visible through DEBUGFUNCTION), silently skips
 * AUTH when none is offered, merges "STARTTLS against an implicit-TLS port"
 * and "silent server" into the same timeout, and reports certificate
 * problems as one PEER_FAILED_VERIFICATION code.  Driving the dialogue
 * ourselves gives each step its own timeout and duration, the exact server
 * reply for every step, and the GnuTLS verification status bits (expired,
 * signer not found, wrong host) that map one to one onto the verdicts.
 *
 * All I/O is non-blocking with poll() against a per-step deadline that is
 * never later than the deadline of the whole diagnosis.  TLS goes through
 * our own push/pull functions so that send() uses MSG_NOSIGNAL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "diag.h"
#include "json.h"
#include "xalloc.h"

#define REPLY_MAX	8192	/* one SMTP reply, all lines */

static const char *const verdict_names[DIAG_VERDICT_COUNT] = {
	"ok", "dns_not_found", "connect_refused", "connect_timeout",
	"greeting_timeout", "tls_mode_mismatch", "starttls_unavailable",
	"tls_handshake_failed", "cert_untrusted", "cert_expired",
	"cert_hostname_mismatch", "auth_unavailable", "auth_failed",
	"sender_rejected", "relay_denied", "protocol_error",
};

const char *
diag_verdict_name(enum diag_verdict v)
{
	if ((int)v < 0 || v >= DIAG_VERDICT_COUNT)
		return "protocol_error";
	return verdict_names[v];
}

const char *
diag_security_name(enum diag_security s)
{
	switch (s) {
	case DIAG_SEC_TLS:	return "tls";
	case DIAG_SEC_STARTTLS:	return "starttls";
	default:		return "none";
	}
}

int
diag_security_parse(const char *s, enum diag_security *out)
{
	if (!s)
		return -1;
	if (!strcasecmp(s, "tls") || !strcasecmp(s, "ssl") || !strcasecmp(s, "implicit"))
		*out = DIAG_SEC_TLS;
	else if (!strcasecmp(s, "starttls"))
		*out = DIAG_SEC_STARTTLS;
	else if (!strcasecmp(s, "none") || !strcasecmp(s, "plain"))
		*out = DIAG_SEC_NONE;
	else
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- target */

static void
wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
diag_target_free(struct diag_target *t)
{
	size_t i;

	if (!t)
		return;
	free(t->host);
	free(t->user);
	wipe_free(t->password);
	free(t->mail_from);
	free(t->rcpt);
	free(t->helo);
	free(t->ca_file);
	for (i = 0; i < t->allow_count; i++)
		free(t->allow[i]);
	free(t->allow);
	memset(t, 0, sizeof(*t));
}

int
diag_target_password_file(struct diag_target *t, const char *path, struct buf *err)
{
	char line[1024];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		buf_printf(err, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		buf_printf(err, "%s: mode %03o, must be 0600 or stricter; refused",
		    path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	while (len < sizeof(line) - 1) {
		n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '\0') {
		buf_printf(err, "%s: empty", path);
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	wipe_free(t->password);
	t->password = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* ---------------------------------------------------------- address policy */

struct cidr {
	int		family;
	unsigned char	addr[16];
	int		bits;
};

static int
cidr_parse(const char *s, struct cidr *c)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	long bits;
	size_t len = strlen(s);

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len + 1);
	slash = strchr(tmp, '/');
	if (slash)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, tmp, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else
		return -1;
	if (slash) {
		errno = 0;
		bits = strtol(slash, &end, 10);
		if (errno || end == slash || *end || bits < 0 || bits > c->bits)
			return -1;
		c->bits = (int)bits;
	}
	return 0;
}

/* addr: 4 or 16 bytes of the given family. */
static int
cidr_contains(const struct cidr *c, int family, const unsigned char *addr)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((c->addr[full] & mask) != (addr[full] & mask))
			return 0;
	}
	return 1;
}

int
diag_cidr_match(const char *cidr, const char *addr)
{
	struct cidr c, a;

	if (cidr_parse(cidr, &c) < 0 || cidr_parse(addr, &a) < 0)
		return -1;
	return cidr_contains(&c, a.family, a.addr);
}

/* Refused by default: not a public unicast address.  NAT64, 6to4 and Teredo
 * embed an IPv4 address that may be private, so they are refused too. */
static const char *const blocked[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
	"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
	"192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
	"224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fe80::/10", "fec0::/10", "fc00::/7", "ff00::/8",
	"2001:db8::/32", "64:ff9b::/96", "2002::/16",
	"2001::/32", "100::/64",
};

int
diag_addr_allowed(const struct sockaddr *sa, char *const *allow, size_t allow_count)
{
	unsigned char a[16];
	int family;
	struct cidr c;
	size_t i;

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6) || IN6_IS_ADDR_V4COMPAT(in6)) {
			family = AF_INET;
			memcpy(a, in6->s6_addr + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, in6->s6_addr, 16);
		}
	} else
		return 0;
	for (i = 0; i < allow_count; i++)
		if (allow[i] && cidr_parse(allow[i], &c) == 0 && cidr_contains(&c, family, a))
			return 1;
	for (i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (cidr_parse(blocked[i], &c) == 0 && cidr_contains(&c, family, a))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ time */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- report */

static _Thread_local const char *redact_secrets[4];	/* set by diag_smtp, per call */

/*
 * Sanitises server text for the report: CR/LF between lines become " / ",
 * other control and non-ASCII bytes become '?', the result is capped, and
 * anything equal to a secret (password, base64 credentials) becomes "***".
 */
static char *
sanitise(const char *s, size_t len)
{
	struct buf b;
	size_t i;
	int k;

	buf_init(&b, DIAG_DETAIL_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		for (k = 0; k < 4; k++) {
			const char *sec = redact_secrets[k];
			size_t sl = sec ? strlen(sec) : 0;
			if (sl >= 3 && sl <= len - i && memcmp(s + i, sec, sl) == 0) {
				buf_append_str(&b, "***");
				i += sl - 1;
				break;
			}
		}
		if (k < 4)
			continue;
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			if (i + 1 < len)
				buf_append_str(&b, " / ");
		} else if (ch < 0x20 || ch >= 0x7f)
			buf_append_char(&b, '?');
		else
			buf_append_char(&b, (char)ch);
	}
	return buf_steal(&b);
}

static struct diag_step *
step_add(struct diag_report *r, long long start, int ok, const char *detail,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct diag_step *
step_add(struct diag_report *r, long long start, int ok, const char *detail,
    const char *fmt, ...)
{
	struct diag_step *s;
	struct buf name;
	va_list ap;

	r->steps = xrealloc(r->steps, (r->step_count + 1) * sizeof(*r->steps));
	s = &r->steps[r->step_count++];
	buf_init(&name, 256);
	va_start(ap, fmt);
	buf_vprintf(&name, fmt, ap);
	va_end(ap);
	s->name = sanitise(buf_str(&name), name.len);
	buf_free(&name);
	s->ok = ok;
	s->duration_ms = start ? (long)(now_ms() - start) : 0;
	s->detail = detail ? sanitise(detail, strlen(detail)) : NULL;
	return s;
}

static enum diag_verdict
finish(struct diag_report *r, enum diag_verdict v, const char *advice)
{
	r->verdict = v;
	free(r->advice);
	r->advice = advice ? xstrdup(advice) : NULL;
	return v;
}

void
diag_report_free(struct diag_report *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->step_count; i++) {
		free(r->steps[i].name);
		free(r->steps[i].detail);
	}
	free(r->steps);
	free(r->advice);
	free(r->hint);
	free(r->tls.version);
	free(r->tls.subject);
	free(r->tls.issuer);
	memset(r, 0, sizeof(*r));
}

void
diag_report_json(const struct diag_report *r, struct buf *out)
{
	size_t i;

	json_object_begin(out);
	json_kv_string(out, "protocol", r->protocol ? r->protocol : "smtp");
	json_kv_string(out, "verdict", diag_verdict_name(r->verdict));
	if (r->advice)
		json_kv_string(out, "advice", r->advice);
	else
		json_kv_null(out, "advice");
	if (r->hint)
		json_kv_string(out, "hint", r->hint);
	else
		json_kv_null(out, "hint");
	json_kv_bool(out, "address_not_allowed", r->not_allowed);
	json_kv_int(out, "duration_ms", r->duration_ms);
	if (r->tls.used) {
		json_key(out, "tls");
		json_object_begin(out);
		json_kv_string(out, "version", r->tls.version ? r->tls.version : "");
		json_kv_string(out, "subject", r->tls.subject ? r->tls.subject : "");
		json_kv_string(out, "issuer", r->tls.issuer ? r->tls.issuer : "");
		json_kv_int(out, "days_to_expiry", r->tls.days_to_expiry);
		json_kv_bool(out, "hostname_ok", r->tls.hostname_ok);
		json_kv_bool(out, "trusted", r->tls.trusted);
		json_object_end(out);
	} else
		json_kv_null(out, "tls");
	json_key(out, "steps");
	json_array_begin(out);
	for (i = 0; i < r->step_count; i++) {
		const struct diag_step *s = &r->steps[i];
		json_object_begin(out);
		json_kv_string(out, "name", s->name);
		json_kv_bool(out, "ok", s->ok);
		json_kv_int(out, "duration_ms", s->duration_ms);
		if (s->detail)
			json_kv_string(out, "detail", s->detail);
		else
			json_kv_null(out, "detail");
		json_object_end(out);
	}
	json_array_end(out);
	json_object_end(out);
}

void
diag_report_text(const struct diag_report *r, struct buf *out)
{
	size_t i;

	for (i = 0; i < r->step_count; i++) {
		const struct diag_step *s = &r->steps[i];
		if (s->ok)
			buf_printf(out, "\xE2\x9C\x93 %s (%ld ms)%s%s\n", s->name,
			    s->duration_ms, s->detail ? ": " : "", s->detail ? s->detail : "");
		else
			buf_printf(out, "\xE2\x9C\x97 %s: %s (%ld ms)\n", s->name,
			    s->detail ? s->detail : "failed", s->duration_ms);
	}
	if (r->tls.used)
		buf_printf(out, "  TLS %s, certificate %s, issuer %s, expires in %ld days%s%s\n",
		    r->tls.version ? r->tls.version : "?",
		    r->tls.subject ? r->tls.subject : "?",
		    r->tls.issuer ? r->tls.issuer : "?", r->tls.days_to_expiry,
		    r->tls.trusted ? "" : ", NOT trusted",
		    r->tls.hostname_ok ? "" : ", host name does NOT match");
	buf_printf(out, "verdict: %s\n", diag_verdict_name(r->verdict));
	if (r->hint)
		buf_printf(out, "cause: %s\n", r->hint);
	if (r->advice)
		buf_printf(out, "advice: %s\n", r->advice);
}

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

/* The deadline for one step: now + step_ms, never past the whole deadline. */
static long long
step_deadline(const struct conn *c)
{
	long long d = now_ms() + c->step_ms;
	return d < c->deadline ? d : c->deadline;
}

/* poll one fd until deadline; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p;
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
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
static int
conn_write(struct conn *c, const char *data, size_t len, long long deadline)
{
	ssize_t n;

	while (len > 0) {
		if (c->tls) {
			n = gnutls_record_send(c->tls, data, len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				if (wait_fd(c->fd, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN, deadline) <= 0)
					return -1;
				continue;
			}
			if (n < 0)
				return -1;
		} else {
			n = send(c->fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				if (wait_fd(c->fd, POLLOUT, deadline) <= 0)
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
static int
conn_fill(struct conn *c, long long deadline)
{
	ssize_t n;
	size_t room = sizeof(c->rbuf) - c->rlen;

	if (room == 0)
		return -1;
	for (;;) {
		if (c->tls) {
			n = gnutls_record_recv(c->tls, c->rbuf + c->rlen, room);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				int w = wait_fd(c->fd, POLLIN, deadline);
				if (w <= 0)
					return w;
				continue;
			}
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, room, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				int w = wait_fd(c->fd, POLLIN, deadline);
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
struct reply {
	int		code;
	struct buf	text;	/* lines joined with '\n', no CR */
	int		status;	/* 1 ok, 0 timeout, -1 closed/error, -2 garbage */
};

/*
 * Reads one (possibly multi-line) reply.  A line that does not start with
 * three digits and ' ' or '-' (or an inconsistent code) makes status -2 and
 * stops at that line.
 */
static void
read_reply(struct conn *c, struct reply *rp, long long deadline)
{
	char *nl;
	size_t linelen;
	int code;

	rp->code = -1;
	rp->status = 1;
	buf_init(&rp->text, REPLY_MAX);
	for (;;) {
		nl = memchr(c->rbuf, '\n', c->rlen);
		if (!nl) {
			int f;
			if (c->rlen == sizeof(c->rbuf)) {
				/* an endless line: take what we have */
				buf_append(&rp->text, c->rbuf, 200);
				rp->status = -2;
				return;
			}
			f = conn_fill(c, deadline);
			if (f <= 0) {
				if (c->rlen > 0)
					buf_append(&rp->text, c->rbuf, c->rlen < 200 ? c->rlen : 200);
				rp->status = f == 0 ? 0 : -1;
				if (f < 0 && c->rlen > 0)
					rp->status = -2;
				c->rlen = 0;
				return;
			}
			continue;
		}
		linelen = (size_t)(nl - c->rbuf);
		if (linelen > 0 && c->rbuf[linelen - 1] == '\r')
			linelen--;
		if (rp->text.len)
			buf_append_char(&rp->text, '\n');
		buf_append(&rp->text, c->rbuf, linelen);
		{
			int valid = linelen >= 3 && isdigit((unsigned char)c->rbuf[0]) &&
			    isdigit((unsigned char)c->rbuf[1]) && isdigit((unsigned char)c->rbuf[2]) &&
			    (linelen == 3 || c->rbuf[3] == ' ' || c->rbuf[3] == '-');
			int last = linelen == 3 || (linelen > 3 && c->rbuf[3] == ' ');

			code = valid ? (c->rbuf[0] - '0') * 100 + (c->rbuf[1] - '0') * 10 + (c->rbuf[2] - '0') : -1;
			c->rlen -= (size_t)(nl + 1 - c->rbuf);
			memmove(c->rbuf, nl + 1, c->rlen);
			if (!valid || (rp->code >= 0 && code != rp->code)) {
				rp->status = -2;
				return;
			}
			rp->code = code;
			if (last)
				return;
		}
	}
}

static void
reply_free(struct reply *rp)
{
	buf_free(&rp->text);
}

/* Sends one command line (CRLF added) and reads the reply. */
static void
command(struct conn *c, const char *line, struct reply *rp)
{
	long long d = step_deadline(c);
	size_t len = strlen(line);
	char *wire = xmalloc(len + 3);
	int w;

	/* one write: a command split over two segments waits for Nagle */
	memcpy(wire, line, len);
	memcpy(wire + len, "\r\n", 3);
	w = conn_write(c, wire, len + 2, d);
	explicit_bzero(wire, len + 2);	/* may hold credentials */
	free(wire);
	if (w < 0) {
		rp->code = -1;
		rp->status = -1;
		buf_init(&rp->text, REPLY_MAX);
		return;
	}
	read_reply(c, rp, d);
}

static const char *
reply_detail(const struct reply *rp)
{
	if (rp->text.len)
		return buf_str(&rp->text);
	return rp->status == 0 ? "no reply (timed out)" : "connection closed";
}

/* ------------------------------------------------------------------ TLS */

/* Handshake on c->fd; returns 0, or the GnuTLS error (timeout: GNUTLS_E_TIMEDOUT). */
/*
 * Trust: the handshake runs with credentials that trust nothing (GnuTLS
 * does not verify during the handshake unless asked), and tls_check()
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

/* The CA file, loaded per diagnosis (it may change with a reload). */
static void
ca_load(struct conn *c, const struct diag_target *t)
{
	int n;

	if (c->ca_list || !t->ca_file || !*t->ca_file)
		return;
	gnutls_x509_trust_list_init(&c->ca_list, 0);
	n = gnutls_x509_trust_list_add_trust_file(c->ca_list, t->ca_file, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (n <= 0)
		c->ca_error = n < 0 ? n : GNUTLS_E_NO_CERTIFICATE_FOUND;
}

static int
tls_start(struct conn *c, const char *sni)
{
	long long d = step_deadline(c);
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
			int w = wait_fd(c->fd, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN, d);
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

static void
conn_close(struct conn *c)
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
	s = sanitise((const char *)d.data, d.size);
	gnutls_free(d.data);
	return s;
}

static int
host_is_ip(const char *h)
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
static enum diag_verdict
tls_check(struct conn *c, const struct diag_target *t, struct diag_report *r)
{
	long long start = now_ms();
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
		step_add(r, start, 0, "the server sent no certificate", "certificate");
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
				step_add(r, start, 0, "unreadable certificate", "certificate");
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
	step_add(r, start, v == DIAG_OK, buf_str(&d), "certificate");
	buf_free(&d);
	return v;
}

static const char *
tls_advice(enum diag_verdict v)
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

/* --------------------------------------------------------------- base64 */

static char *
b64(const unsigned char *in, size_t len)
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

/* ----------------------------------------------------------- SMTP logic */

struct caps {
	int	starttls;
	int	auth;		/* any AUTH advertised */
	int	plain, login;
	char	mechs[128];
};

static void
parse_caps(const char *text, struct caps *cp)
{
	const char *line = text;

	memset(cp, 0, sizeof(*cp));
	/* the first line is the greeting part of the EHLO reply */
	line = strchr(line, '\n');
	while (line) {
		const char *kw;
		size_t len;

		line++;
		len = strcspn(line, "\n");
		kw = line + (len >= 4 ? 4 : len);
		len -= (size_t)(kw - line);
		if (len >= 8 && !strncasecmp(kw, "STARTTLS", 8))
			cp->starttls = 1;
		if (len >= 5 && !strncasecmp(kw, "AUTH", 4) && (kw[4] == ' ' || kw[4] == '=')) {
			const char *m = kw + 5, *end = kw + len;
			cp->auth = 1;
			while (m < end) {
				size_t ml = 0;
				while (m + ml < end && m[ml] != ' ')
					ml++;
				if (ml == 5 && !strncasecmp(m, "PLAIN", 5))
					cp->plain = 1;
				if (ml == 5 && !strncasecmp(m, "LOGIN", 5))
					cp->login = 1;
				if (ml &&
				    strlen(cp->mechs) + ml + 2 < sizeof(cp->mechs)) {
					char tmp[64];
					size_t tl = ml < sizeof(tmp) - 1 ? ml : sizeof(tmp) - 1;
					memcpy(tmp, m, tl);
					tmp[tl] = '\0';
					if (!strstr(cp->mechs, tmp)) {
						size_t used = strlen(cp->mechs);
						snprintf(cp->mechs + used, sizeof(cp->mechs) - used, "%s%s",
						    used ? " " : "", tmp);
					}
				}
				m += ml;
				while (m < end && *m == ' ')
					m++;
			}
		}
		line = strchr(line, '\n');
	}
}

static int
ci_contains(const char *hay, const char *needle)
{
	return strcasestr(hay, needle) != NULL;
}

/* Known provider cases of a failed login, from the server's reply text. */
static const char *
auth_hint(const char *text)
{
	if (ci_contains(text, "application-specific password") || ci_contains(text, "app password") ||
	    ci_contains(text, "application password") || ci_contains(text, "app-specific password") ||
	    ci_contains(text, "InvalidSecondFactor") || ci_contains(text, "5.7.9"))
		return "application password required (the account uses two-step verification)";
	if (ci_contains(text, "SmtpClientAuthentication is disabled") || ci_contains(text, "5.7.139"))
		return "SMTP AUTH is disabled for the account (Microsoft 365: enable Authenticated SMTP)";
	if (ci_contains(text, "5.7.3 Authentication unsuccessful"))
		return "Microsoft 365 rejected the login (wrong password, or SMTP AUTH / legacy authentication disabled)";
	if (ci_contains(text, "WebLoginRequired") || ci_contains(text, "web browser"))
		return "the provider requires a login through the web browser first";
	if (ci_contains(text, "5.7.8") || ci_contains(text, "credentials invalid") ||
	    ci_contains(text, "Username and Password not accepted"))
		return "user name or password wrong";
	return NULL;
}

struct session {
	const struct diag_target *t;
	struct diag_report	*r;
	struct conn		 c;
	struct caps		 caps;
	const char		*helo;
};

/* EHLO (falling back to HELO); records the step; DIAG_OK or protocol_error. */
static enum diag_verdict
do_ehlo(struct session *s, const char *label)
{
	struct reply rp;
	char line[300];
	long long st = now_ms();

	snprintf(line, sizeof(line), "EHLO %s", s->helo);
	command(&s->c, line, &rp);
	if (rp.status == 1 && rp.code == 250) {
		parse_caps(buf_str(&rp.text), &s->caps);
		step_add(s->r, st, 1, buf_str(&rp.text), "%s", label);
		reply_free(&rp);
		return DIAG_OK;
	}
	step_add(s->r, st, 0, reply_detail(&rp), "%s", label);
	reply_free(&rp);
	return finish(s->r, DIAG_PROTOCOL_ERROR,
	    "The server did not accept EHLO: it does not behave as an SMTP submission server on this port.");
}

static enum diag_verdict
do_tls(struct session *s, int implicit)
{
	long long st = now_ms();
	int ret;
	enum diag_verdict v;

	pthread_once(&sys_trust_once, sys_trust_load);
	ca_load(&s->c, s->t);
	ret = tls_start(&s->c, host_is_ip(s->t->host) ? NULL : s->t->host);
	if (s->c.ca_error) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: %s (only the system store is used)",
		    s->t->ca_file, gnutls_strerror(s->c.ca_error));
		step_add(s->r, 0, 0, msg, "CA file");
		s->c.ca_error = 0;
	}
	if (ret != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", ret == GNUTLS_E_TIMEDOUT ? "no TLS answer (timed out)" : gnutls_strerror(ret));
		step_add(s->r, st, 0, msg, "TLS handshake");
		if (implicit && ret == GNUTLS_E_TIMEDOUT)
			return finish(s->r, DIAG_GREETING_TIMEOUT,
			    "The server accepted the connection but never answered the TLS handshake: it is overloaded or filtered.");
		/* a plain SMTP server talks first ("220 ...") or answers our
		 * ClientHello with "500 ...": three digits, never a TLS record */
		if (implicit && s->c.first_len >= 3 && isdigit((unsigned char)s->c.first[0]) &&
		    isdigit((unsigned char)s->c.first[1]) && isdigit((unsigned char)s->c.first[2])) {
			ssize_t n;
			/* the rest of its first line is most likely already here */
			n = recv(s->c.fd, s->c.first + s->c.first_len,
			    sizeof(s->c.first) - 1 - s->c.first_len, MSG_DONTWAIT);
			if (n > 0)
				s->c.first_len += (size_t)n;
			s->c.first[s->c.first_len] = '\0';
			s->c.first[strcspn(s->c.first, "\r\n")] = '\0';
			step_add(s->r, 0, 0, s->c.first, "server sent plain text");
			return finish(s->r, DIAG_TLS_MODE_MISMATCH,
			    "This port speaks plain SMTP (with STARTTLS), not implicit TLS: set security to STARTTLS, or use port 465 for SSL/TLS.");
		}
		return finish(s->r, DIAG_TLS_HANDSHAKE_FAILED, tls_advice(DIAG_TLS_HANDSHAKE_FAILED));
	}
	step_add(s->r, st, 1, NULL, "TLS handshake");
	v = tls_check(&s->c, s->t, s->r);
	if (v != DIAG_OK)
		return finish(s->r, v, tls_advice(v));
	return DIAG_OK;
}

/* After a greeting timeout without TLS: does the port speak implicit TLS? */
static int
speaks_tls(struct session *s)
{
	int ret;
	long saved = s->c.step_ms;

	s->c.step_ms = 2000;
	ret = tls_start(&s->c, host_is_ip(s->t->host) ? NULL : s->t->host);
	s->c.step_ms = saved;
	/* a ServerHello, or a TLS alert, came back: TLS is spoken there */
	return ret == 0 || ret == GNUTLS_E_FATAL_ALERT_RECEIVED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED ||
	    ret == GNUTLS_E_CERTIFICATE_ERROR || ret == GNUTLS_E_NO_CIPHER_SUITES ||
	    ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
}

static enum diag_verdict
do_auth(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	struct buf cmd;
	char *enc = NULL, *enc_user = NULL, *enc_pass = NULL;
	const char *mech = s->caps.plain ? "PLAIN" : "LOGIN";
	long long st = now_ms();
	enum diag_verdict v = DIAG_OK;

	if (!t->password) {
		step_add(s->r, 0, 0, "no password given (a password file of mode 0600 is required)", "AUTH");
		return finish(s->r, DIAG_AUTH_FAILED, "Give the account's password in a file of mode 0600.");
	}
	buf_init(&cmd, 4096);
	if (s->caps.plain) {
		size_t ul = strlen(t->user), pl = strlen(t->password);
		unsigned char *raw = xmalloc(ul + pl + 2);
		raw[0] = '\0';
		memcpy(raw + 1, t->user, ul);
		raw[ul + 1] = '\0';
		memcpy(raw + ul + 2, t->password, pl);
		enc = b64(raw, ul + pl + 2);
		explicit_bzero(raw, ul + pl + 2);
		free(raw);
		redact_secrets[1] = enc;
		buf_printf(&cmd, "AUTH PLAIN %s", enc);
		command(&s->c, buf_str(&cmd), &rp);
	} else {
		enc_user = b64((const unsigned char *)t->user, strlen(t->user));
		enc_pass = b64((const unsigned char *)t->password, strlen(t->password));
		redact_secrets[2] = enc_pass;
		command(&s->c, "AUTH LOGIN", &rp);
		if (rp.status == 1 && rp.code == 334) {
			reply_free(&rp);
			command(&s->c, enc_user, &rp);
			if (rp.status == 1 && rp.code == 334) {
				reply_free(&rp);
				command(&s->c, enc_pass, &rp);
			}
		}
	}
	if (rp.status == 1 && rp.code == 235) {
		step_add(s->r, st, 1, buf_str(&rp.text), "AUTH %s as %s", mech, t->user);
	} else {
		const char *h = rp.text.len ? auth_hint(buf_str(&rp.text)) : NULL;
		step_add(s->r, st, 0, reply_detail(&rp), "AUTH %s", mech);
		if (rp.status == 1 && rp.code >= 400) {
			if (h)
				s->r->hint = xstrdup(h);
			v = finish(s->r, DIAG_AUTH_FAILED,
			    h && strstr(h, "application password") ?
			    "Create an application password in the account's security settings and use it instead of the normal password." :
			    h && strstr(h, "disabled") ?
			    "The account's administrator must enable SMTP AUTH (authenticated SMTP) for this mailbox." :
			    "The server refused the login: check the user name (often the full address) and the password.");
		} else
			v = finish(s->r, DIAG_PROTOCOL_ERROR, "The server answered AUTH in a way no mail client understands.");
	}
	reply_free(&rp);
	if (cmd.data)
		explicit_bzero(cmd.data, cmd.len);
	buf_free(&cmd);
	wipe_free(enc);
	wipe_free(enc_user);
	wipe_free(enc_pass);
	redact_secrets[1] = redact_secrets[2] = NULL;
	return v;
}

static enum diag_verdict
do_envelope(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	char line[600];
	long long st = now_ms();
	enum diag_verdict v = DIAG_OK;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", t->mail_from);
	command(&s->c, line, &rp);
	if (!(rp.status == 1 && rp.code == 250)) {
		step_add(s->r, st, 0, reply_detail(&rp), "MAIL FROM:<%s>", t->mail_from);
		if (rp.status == 1 && rp.code >= 400)
			v = finish(s->r, DIAG_SENDER_REJECTED,
			    rp.code == 530 ? "The server requires authentication before accepting mail: enable SMTP authentication in the mail client." :
			    "The server refused the sender address: send from an address the account owns.");
		else
			v = finish(s->r, DIAG_PROTOCOL_ERROR, "The server did not answer MAIL FROM.");
		reply_free(&rp);
		return v;
	}
	step_add(s->r, st, 1, buf_str(&rp.text), "MAIL FROM:<%s>", t->mail_from);
	reply_free(&rp);
	if (!t->rcpt)
		return DIAG_OK;
	st = now_ms();
	snprintf(line, sizeof(line), "RCPT TO:<%s>", t->rcpt);
	command(&s->c, line, &rp);
	if (rp.status == 1 && (rp.code == 250 || rp.code == 251)) {
		step_add(s->r, st, 1, buf_str(&rp.text), "RCPT TO:<%s>", t->rcpt);
	} else {
		const char *txt = buf_str(&rp.text);
		step_add(s->r, st, 0, reply_detail(&rp), "RCPT TO:<%s>", t->rcpt);
		if (rp.status == 1 && rp.code >= 500 &&
		    (ci_contains(txt, "relay") || strstr(txt, "5.7.1")))
			v = finish(s->r, DIAG_RELAY_DENIED,
			    "The server refuses to relay to outside addresses: authenticate (SMTP AUTH) with the account, or use the provider's submission server.");
		else if (rp.status == 1)
			v = finish(s->r, DIAG_PROTOCOL_ERROR, "The server refused the test recipient; see its reply.");
		else
			v = finish(s->r, DIAG_PROTOCOL_ERROR, "The server stopped answering after RCPT TO.");
	}
	reply_free(&rp);
	return v;
}

static void
do_quit(struct session *s)
{
	struct reply rp;
	long long st = now_ms();
	long saved = s->c.step_ms;

	s->c.step_ms = saved < 2000 ? saved : 2000;
	command(&s->c, "QUIT", &rp);
	step_add(s->r, st, rp.status == 1 && rp.code == 221, reply_detail(&rp), "QUIT");
	s->c.step_ms = saved;
	reply_free(&rp);
}

/* Non-blocking connect; 0 connected, else errno (ETIMEDOUT on timeout). */
static int
tcp_connect(const struct addrinfo *ai, long long deadline, int *fdp)
{
	int fd, err = 0, w;
	socklen_t el = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*fdp = fd;
		return 0;
	}
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return err;
	}
	w = wait_fd(fd, POLLOUT, deadline);
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
static enum diag_verdict
smtp_dialogue(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	long long st;
	enum diag_verdict v;

	if (t->security == DIAG_SEC_TLS) {
		if ((v = do_tls(s, 1)) != DIAG_OK)
			return v;
	}

	st = now_ms();
	{
		/* keep a little time to find out whether the port speaks TLS */
		long long gd = step_deadline(&s->c), total = s->c.deadline - st;
		long long reserve = total / 4 < 2000 ? total / 4 : 2000;

		if (t->security != DIAG_SEC_TLS && gd > s->c.deadline - reserve)
			gd = s->c.deadline - reserve;
		read_reply(&s->c, &rp, gd);
	}
	if (rp.status == 0 && rp.text.len == 0) {
		step_add(s->r, st, 0, "no greeting (timed out)", "greeting");
		reply_free(&rp);
		st = now_ms();
		if (t->security != DIAG_SEC_TLS && st < s->c.deadline && speaks_tls(s)) {
			step_add(s->r, st, 0, "the port answered a TLS ClientHello: it speaks implicit TLS",
			    "TLS probe");
			return finish(s->r, DIAG_TLS_MODE_MISMATCH,
			    "This port expects implicit TLS (SSL/TLS, usually port 465): set security to SSL/TLS, or use port 587 with STARTTLS.");
		}
		return finish(s->r, DIAG_GREETING_TIMEOUT,
		    "The server accepted the connection but never greeted: it is overloaded, filtered, or expects TLS on this port.");
	}
	if (rp.status != 1 || rp.code != 220) {
		step_add(s->r, st, 0, reply_detail(&rp), "greeting");
		reply_free(&rp);
		return finish(s->r, DIAG_PROTOCOL_ERROR,
		    "The server did not greet with 220: it refused the session or is not an SMTP server.");
	}
	step_add(s->r, st, 1, buf_str(&rp.text), "greeting");
	reply_free(&rp);

	if ((v = do_ehlo(s, "EHLO")) != DIAG_OK)
		return v;

	if (t->security == DIAG_SEC_STARTTLS) {
		st = now_ms();
		if (!s->caps.starttls) {
			step_add(s->r, st, 0, "STARTTLS is not in the EHLO capabilities", "STARTTLS");
			return finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server does not offer STARTTLS on this port: use port 465 with SSL/TLS, or ask the provider to enable TLS.");
		}
		command(&s->c, "STARTTLS", &rp);
		if (rp.status != 1 || rp.code != 220) {
			step_add(s->r, st, 0, reply_detail(&rp), "STARTTLS");
			reply_free(&rp);
			return finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server advertised STARTTLS but refused it.");
		}
		step_add(s->r, st, 1, buf_str(&rp.text), "STARTTLS");
		reply_free(&rp);
		s->c.rlen = 0;	/* nothing read before TLS may be trusted after */
		if ((v = do_tls(s, 0)) != DIAG_OK)
			return v;
		if ((v = do_ehlo(s, "EHLO (after STARTTLS)")) != DIAG_OK)
			return v;
	} else if (t->security == DIAG_SEC_NONE && s->caps.starttls) {
		step_add(s->r, 0, 1, "offered but not used (security none): the password would travel in clear text",
		    "STARTTLS available");
	}

	step_add(s->r, 0, s->caps.auth || !t->user,
	    s->caps.auth ? s->caps.mechs : "none offered", "AUTH mechanisms");
	if (t->user) {
		if (!s->caps.auth)
			return finish(s->r, DIAG_AUTH_UNAVAILABLE,
			    s->caps.starttls && !s->c.tls ?
			    "The server offers AUTH only after STARTTLS: set security to STARTTLS." :
			    "The server offers no authentication on this port: use the provider's submission port (587 with STARTTLS or 465 with SSL/TLS).");
		if (!s->caps.plain && !s->caps.login) {
			step_add(s->r, 0, 0, "neither PLAIN nor LOGIN is offered", "AUTH");
			return finish(s->r, DIAG_AUTH_UNAVAILABLE,
			    "The server offers only authentication mechanisms this probe does not speak.");
		}
		if ((v = do_auth(s)) != DIAG_OK)
			return v;
	}
	if (t->mail_from && (v = do_envelope(s)) != DIAG_OK)
		return v;
	do_quit(s);
	return finish(s->r, DIAG_OK, NULL);
}

enum diag_verdict
diag_smtp(const struct diag_target *t, struct diag_report *r)
{
	struct session s;
	struct addrinfo hints, *res = NULL, *ai;
	char port[16], addr[INET6_ADDRSTRLEN + 48];
	long long start = now_ms(), st;
	int rc, any_timeout = 0, any_tried = 0, any_refused = 0;
	struct buf addrs;

	/* before the clock starts: the first call in a process pays for it */
	if (t->security != DIAG_SEC_NONE) {
		pthread_once(&sys_trust_once, sys_trust_load);
		start = now_ms();
	}
	memset(r, 0, sizeof(*r));
	r->protocol = "smtp";
	memset(&s, 0, sizeof(s));
	s.t = t;
	s.r = r;
	s.c.fd = -1;
	s.c.deadline = start + (t->timeout_ms > 0 ? t->timeout_ms : DIAG_TIMEOUT_DEFAULT_MS);
	s.c.step_ms = t->step_timeout_ms > 0 ? t->step_timeout_ms : DIAG_STEP_TIMEOUT_DEFAULT_MS;
	s.helo = t->helo ? t->helo : "helpgate.invalid";
	redact_secrets[0] = t->password;
	redact_secrets[1] = redact_secrets[2] = redact_secrets[3] = NULL;

	if (!t->host || !*t->host || t->port <= 0 || t->port > 65535) {
		step_add(r, 0, 0, "no host or port", "resolve");
		finish(r, DIAG_PROTOCOL_ERROR, "Give the server's host name and port.");
		goto out;
	}
	if (t->user && strpbrk(t->user, "\r\n")) {
		step_add(r, 0, 0, "user name contains a line break", "input");
		finish(r, DIAG_PROTOCOL_ERROR, NULL);
		goto out;
	}
	if ((t->mail_from && strpbrk(t->mail_from, "\r\n<>")) || (t->rcpt && strpbrk(t->rcpt, "\r\n<>"))) {
		step_add(r, 0, 0, "address contains a line break or angle bracket", "input");
		finish(r, DIAG_PROTOCOL_ERROR, NULL);
		goto out;
	}

	/* resolve (getaddrinfo has no timeout; DiagnoseResolver comes later) */
	st = now_ms();
	snprintf(port, sizeof(port), "%d", t->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(t->host, port, &hints, &res);
	if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
		hints.ai_flags = 0;	/* e.g. only ::1 configured: try without */
		rc = getaddrinfo(t->host, port, &hints, &res);
	}
	if (rc != 0) {
		step_add(r, st, 0, gai_strerror(rc), "resolve %s", t->host);
		finish(r, DIAG_DNS_NOT_FOUND,
		    "The server name does not resolve: check the spelling of the outgoing server in the mail client.");
		goto out;
	}
	buf_init(&addrs, 1024);
	for (ai = res; ai; ai = ai->ai_next) {
		addr_string(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr));
		if (addrs.len)
			buf_append_str(&addrs, " ");
		buf_append_str(&addrs, addr);
	}
	step_add(r, st, 1, buf_str(&addrs), "resolve %s", t->host);
	buf_free(&addrs);

	for (ai = res; ai; ai = ai->ai_next) {
		int err, fd = -1;

		addr_string(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr));
		if (!diag_addr_allowed(ai->ai_addr, t->allow, t->allow_count)) {
			step_add(r, 0, 0, "address not allowed (loopback, private, link-local, multicast or reserved; see ProbeAllow)",
			    "connect %s", addr);
			continue;
		}
		if (now_ms() >= s.c.deadline)
			break;
		any_tried = 1;
		st = now_ms();
		err = tcp_connect(ai, step_deadline(&s.c), &fd);
		if (err) {
			step_add(r, st, 0, err == ETIMEDOUT ? "timed out" : strerror(err), "connect %s", addr);
			if (err == ETIMEDOUT)
				any_timeout = 1;
			else
				any_refused = 1;
			continue;
		}
		step_add(r, st, 1, NULL, "connect %s", addr);
		{
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		s.c.fd = fd;
		break;
	}
	freeaddrinfo(res);
	if (s.c.fd < 0) {
		if (!any_tried) {
			r->not_allowed = 1;
			finish(r, DIAG_PROTOCOL_ERROR,
			    "The server's addresses are private or reserved; helpgate probes only public servers (ProbeAllow).");
		} else if (any_timeout || !any_refused)
			finish(r, DIAG_CONNECT_TIMEOUT,
			    "No answer from the server on this port: a firewall (often the client's network blocking outgoing SMTP) or a wrong port.");
		else
			finish(r, DIAG_CONNECT_REFUSED,
			    "The server refused the connection on this port: wrong port, or the service is down. Submission ports are 587 (STARTTLS) and 465 (SSL/TLS).");
		goto out;
	}
	smtp_dialogue(&s);
	conn_close(&s.c);
out:
	conn_close(&s.c);
	redact_secrets[0] = redact_secrets[1] = redact_secrets[2] = NULL;
	r->duration_ms = (long)(now_ms() - start);
	return r->verdict;
}
