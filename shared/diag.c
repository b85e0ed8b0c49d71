/*
 * diag - what every probe's report shares: verdict and security names, the
 * target (password file, wiping), the address policy, and the report
 * (steps, JSON, text).  The probes are diag_smtp.c and diag_imap.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>


#include "buf.h"
#include "diag.h"
#include "diag_int.h"
#include "json.h"
#include "xalloc.h"


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

void
dg_wipe_free(char *s)
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
	dg_wipe_free(t->password);
	free(t->mail_from);
	free(t->rcpt);
	free(t->helo);
	free(t->ca_file);
	free(t->resolver);
	for (i = 0; i < t->allow_count; i++)
		free(t->allow[i]);
	free(t->allow);
	free(t->mail_ports);
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
	dg_wipe_free(t->password);
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

/* An IPv4-mapped CIDR (::ffff:a.b.c.d, prefix 96 or longer) is the IPv4
 * one it maps: it names the same hosts. */
static void
cidr_unmap(struct cidr *c)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (c->family == AF_INET6 && c->bits >= 96 && memcmp(c->addr, mapped, 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->bits -= 96;
	}
}

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
	cidr_unmap(c);
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

/*
 * Refused by default: not a public unicast address.  IPv4, and IPv6 inside
 * 2000::/3 (the only global unicast space; everything outside it is refused
 * before this list is read: ::, ::1, fc00::/7, fe80::/10, ff00::/8,
 * 100::/64, 64:ff9b:1::/48 ...).  6to4 and Teredo embed an IPv4 address
 * that may be private, and the packets go through relays, so they are
 * refused whole; 2001::/23 holds Teredo, benchmarking and ORCHID (no mail
 * server lives there).
 */
static const char *const blocked[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
	"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
	"192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
};

/*
 * The IPv4 address an IPv6 one stands for, where the packets go to that
 * IPv4 host: IPv4-mapped ::ffff:0:0/96 (a dual-stack socket connects to
 * the IPv4 address), IPv4-compatible ::/96 (deprecated; not :: and ::1),
 * SIIT's IPv4-translated ::ffff:0:0:0/96 (RFC 6145) and the NAT64
 * well-known prefix 64:ff9b::/96 (RFC 6052: the translator forwards to the
 * last 32 bits).  1 with v4 set, 0 for any other address.  The local-use
 * NAT64 prefix 64:ff9b:1::/48 (RFC 8215) is not one of them: where its
 * IPv4 sits depends on the operator's prefix length, so it is refused.
 */
static int
v4_behind(const unsigned char *a, unsigned char *v4)
{
	static const unsigned char prefix[][12] = {
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff },	/* mapped */
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 },	/* translated */
		{ 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 },	/* NAT64 */
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },		/* compatible */
	};
	size_t i;

	for (i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
		if (memcmp(a, prefix[i], 12) != 0)
			continue;
		if (i == 3 && a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)
			return 0;	/* :: and ::1 are themselves */
		memcpy(v4, a + 12, 4);
		return 1;
	}
	return 0;
}

static int
in_blocked(int family, const unsigned char *a)
{
	struct cidr c;
	size_t i;

	for (i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (cidr_parse(blocked[i], &c) == 0 && cidr_contains(&c, family, a))
			return 1;
	return 0;
}

int
diag_addr_allowed(const struct sockaddr *sa, char *const *allow, size_t allow_count)
{
	unsigned char a6[16], a4[4];
	int has6 = 0, has4 = 0;
	struct cidr c;
	size_t i;

	if (sa->sa_family == AF_INET) {
		memcpy(a4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		has4 = 1;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a6, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, 16);
		has6 = 1;
		has4 = v4_behind(a6, a4);
	} else
		return 0;
	/* an allow entry may name either form of an address */
	for (i = 0; i < allow_count; i++)
		if (allow[i] && cidr_parse(allow[i], &c) == 0 &&
		    ((has4 && cidr_contains(&c, AF_INET, a4)) ||
		    (has6 && cidr_contains(&c, AF_INET6, a6))))
			return 1;
	if (has4)
		return !in_blocked(AF_INET, a4);	/* judged as the IPv4 host */
	if ((a6[0] & 0xe0) != 0x20)
		return 0;	/* outside 2000::/3: not global unicast */
	return !in_blocked(AF_INET6, a6);
}

/* ------------------------------------------------------------------ time */

long long
dg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- report */

_Thread_local const char *dg_redact[4];	/* set by the probe, per call */

/*
 * Sanitises server text for the report: CR/LF between lines become " / ",
 * other control and non-ASCII bytes become '?', the result is capped, and
 * anything equal to a secret (password, base64 credentials) becomes "***".
 */
char *
dg_sanitise(const char *s, size_t len)
{
	struct buf b;
	size_t i;
	int k;

	buf_init(&b, DIAG_DETAIL_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		for (k = 0; k < 4; k++) {
			const char *sec = dg_redact[k];
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

struct diag_step *
dg_step_add(struct diag_report *r, long long start, int ok, const char *detail,
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
	s->name = dg_sanitise(buf_str(&name), name.len);
	buf_free(&name);
	s->ok = ok;
	s->duration_ms = start ? (long)(dg_now_ms() - start) : 0;
	s->detail = detail ? dg_sanitise(detail, strlen(detail)) : NULL;
	return s;
}

enum diag_verdict
dg_finish(struct diag_report *r, enum diag_verdict v, const char *advice)
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
	free(r->sent_folder);
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
	if (r->protocol && !strcmp(r->protocol, "imap")) {
		if (r->sent_folder_found < 0)
			json_kv_null(out, "sent_folder_found");
		else
			json_kv_bool(out, "sent_folder_found", r->sent_folder_found);
		if (r->sent_folder)
			json_kv_string(out, "sent_folder", r->sent_folder);
		else
			json_kv_null(out, "sent_folder");
	}
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
	if (r->protocol && !strcmp(r->protocol, "imap") && r->sent_folder_found >= 0)
		buf_printf(out, "  Sent folder: %s\n", r->sent_folder_found && r->sent_folder ?
		    r->sent_folder : "none found");
	buf_printf(out, "verdict: %s\n", diag_verdict_name(r->verdict));
	if (r->hint)
		buf_printf(out, "cause: %s\n", r->hint);
	if (r->advice)
		buf_printf(out, "advice: %s\n", r->advice);
}
