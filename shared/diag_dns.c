/*
 * diag_dns - bounded A/AAAA and SRV lookups through c-ares (diag_dns.h).
 *
 * Each call opens its own channel, sends its queries, and drives the
 * channel with poll() until every answer is in, the deadline passes, or the
 * thread's dg_cancel_fd fires; then ares_cancel() ends what is left.  The
 * per-try timeout (1 s, 3 tries, c-ares doubling it per round) only shapes
 * the retries: the deadline is what bounds the call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <ares.h>

#include "buf.h"
#include "diag_dns.h"
#include "diag_int.h"
#include "xalloc.h"

/* Newer c-ares marks ares_getsock()/ares_parse_srv_reply() deprecated in
 * favour of APIs that Debian 12's 1.18 does not have yet. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define DNS_TRY_MS	1000
#define DNS_TRIES	3
#define DNS_T_SRV	33
#define DNS_C_IN	1

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status = ARES_ENOTINITIALIZED;

static void
lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

const char *
dg_dns_rc_name(enum dg_dns_rc rc)
{
	switch (rc) {
	case DG_DNS_OK:		return "ok";
	case DG_DNS_NOT_FOUND:	return "not found";
	case DG_DNS_TIMEOUT:	return "timed out";
	default:		return "failed";
	}
}

/* "ADDRESS[:PORT]" -> node (port 53 when none).  0, or -1 if malformed. */
static int
resolver_parse(const char *s, struct ares_addr_port_node *node)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *p = NULL, *end;
	size_t len;
	long port = 53;
	char *e;

	memset(node, 0, sizeof(*node));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] != '\0' && end[1] != ':'))
			return -1;
		len = (size_t)(end - s - 1);
		s++;
		if (end[1] == ':')
			p = end + 2;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && !strchr(colon + 1, ':')) {	/* one colon: IPv4:PORT */
			len = (size_t)(colon - s);
			p = colon + 1;
		} else
			len = strlen(s);
	}
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (p) {
		errno = 0;
		port = strtol(p, &e, 10);
		if (*p < '0' || *p > '9' || errno || *e || port < 1 || port > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, addr, &node->addr.addr4) == 1)
		node->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &node->addr.addr6) == 1)
		node->family = AF_INET6;
	else
		return -1;
	node->udp_port = node->tcp_port = (int)port;
	return 0;
}

int
dg_dns_resolver_valid(const char *resolver)
{
	struct ares_addr_port_node node;

	return resolver && resolver_parse(resolver, &node) == 0;
}

/* A channel for resolver (NULL: the system's); why gets the reason on -1. */
static int
channel_open(ares_channel *ch, const char *resolver, struct buf *why)
{
	struct ares_options o;
	struct ares_addr_port_node node;
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES, rc;

	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		buf_printf(why, "resolver library: %s", ares_strerror(lib_status));
		return -1;
	}
	if (resolver && *resolver && resolver_parse(resolver, &node) != 0) {
		buf_printf(why, "DiagnoseResolver \"%s\" is not ADDRESS[:PORT]", resolver);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.timeout = DNS_TRY_MS;
	o.tries = DNS_TRIES;
	if (resolver && *resolver) {
		/* that server and no search list; the hosts file stays first, as
		 * for a mail client (c-ares never asks DNS for "localhost",
		 * RFC 6761, so without it localhost would not resolve) */
		o.ndomains = 0;
		o.domains = NULL;
		mask |= ARES_OPT_DOMAINS;
	}
	if ((rc = ares_init_options(ch, &o, mask)) != ARES_SUCCESS) {
		buf_printf(why, "resolver: %s", ares_strerror(rc));
		return -1;
	}
	if (resolver && *resolver) {
		node.next = NULL;
		if ((rc = ares_set_servers_ports(*ch, &node)) != ARES_SUCCESS) {
			buf_printf(why, "resolver %s: %s", resolver, ares_strerror(rc));
			ares_destroy(*ch);
			return -1;
		}
	}
	return 0;
}

/*
 * Drives ch until *pending is 0.  Returns 0, or 1 when the deadline or a
 * cancel cut it short (the remaining queries are cancelled: their
 * callbacks run with ARES_ECANCELLED before this returns).
 */
static int
channel_drive(ares_channel ch, const int *pending, long long deadline)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd p[ARES_GETSOCK_MAXNUM + 1];
	struct timeval maxtv, tv, *tvp;
	long long left;
	int bm, n, i, cancel_at, rc, ms;

	while (*pending > 0) {
		left = deadline - dg_now_ms();
		if (left <= 0)
			goto cut;
		bm = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		for (i = 0, n = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* the ARES_GETSOCK_* macros shift a signed 1 into the sign bit */
			short ev = (short)(((unsigned)bm >> i & 1u ? POLLIN : 0) |
			    ((unsigned)bm >> (i + ARES_GETSOCK_MAXNUM) & 1u ? POLLOUT : 0));
			if (!ev)
				continue;
			p[n].fd = socks[i];
			p[n].events = ev;
			p[n].revents = 0;
			n++;
		}
		cancel_at = -1;
		if (dg_cancel_fd >= 0) {
			cancel_at = n;
			p[n].fd = dg_cancel_fd;
			p[n].events = POLLIN;
			p[n].revents = 0;
			n++;
		}
		maxtv.tv_sec = (time_t)(left / 1000);
		maxtv.tv_usec = (suseconds_t)((left % 1000) * 1000);
		tvp = ares_timeout(ch, &maxtv, &tv);
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		rc = poll(p, (nfds_t)n, ms);
		if (rc < 0 && errno != EINTR)
			goto cut;
		if (cancel_at >= 0 && p[cancel_at].revents)
			goto cut;
		if (rc <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);	/* retries, timeouts */
			continue;
		}
		for (i = 0; i < n; i++) {
			if (i == cancel_at || !p[i].revents)
				continue;
			ares_process_fd(ch,
			    p[i].revents & (POLLIN | POLLERR | POLLHUP) ? p[i].fd : ARES_SOCKET_BAD,
			    p[i].revents & POLLOUT ? p[i].fd : ARES_SOCKET_BAD);
		}
	}
	return 0;
cut:
	ares_cancel(ch);
	return 1;
}

static enum dg_dns_rc
status_rc(int status, int cut)
{
	switch (status) {
	case ARES_SUCCESS:
		return DG_DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		return DG_DNS_NOT_FOUND;
	case ARES_ETIMEOUT:
		return DG_DNS_TIMEOUT;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return cut ? DG_DNS_TIMEOUT : DG_DNS_FAILED;
	default:
		return DG_DNS_FAILED;
	}
}

/* The resolver's words for a failed lookup, with who was asked. */
static void
explain(struct buf *why, const char *name, int status, int cut, const char *resolver)
{
	const char *server = resolver && *resolver ? resolver : "the system resolver";

	if (!why)
		return;
	if (cut)
		buf_printf(why, "%s: no answer from %s in time", name, server);
	else if (status == ARES_ENOTFOUND)
		buf_printf(why, "%s: NXDOMAIN or no such record (%s, from %s)", name,
		    ares_strerror(status), server);
	else if (status == ARES_ENODATA)
		buf_printf(why, "%s: no such record (%s, from %s)", name, ares_strerror(status), server);
	else
		buf_printf(why, "%s: %s (from %s)", name, ares_strerror(status), server);
}

/* ------------------------------------------------------------ addresses */

struct addr_query {
	int			 pending;
	int			 status;
	struct ares_addrinfo	*res;
};

static void
addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct addr_query *q = arg;

	(void)timeouts;
	q->status = status;
	q->res = res;
	q->pending = 0;
}

/* An IP literal: no query at all. */
static enum dg_dns_rc
numeric_addrs(const char *host, int port, struct dg_addr **out, size_t *count)
{
	struct addrinfo hints, *res = NULL, *ai;
	char service[16];
	size_t n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return DG_DNS_FAILED;
	for (ai = res; ai; ai = ai->ai_next)
		n++;
	*out = xcalloc(n ? n : 1, sizeof(**out));
	n = 0;
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof((*out)[n].sa))
			continue;
		memcpy(&(*out)[n].sa, ai->ai_addr, ai->ai_addrlen);
		(*out)[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	*count = n;
	return n ? DG_DNS_OK : DG_DNS_FAILED;
}

/* "localhost", "x.localhost" (RFC 6761 6.3: always loopback, never asked
 * of DNS; c-ares 1.18 refuses to send it and its hosts-file path fails
 * when a server is set). */
static int
is_localhost(const char *host)
{
	size_t len = strlen(host), k = strlen("localhost");

	while (len > 0 && host[len - 1] == '.')
		len--;
	return len >= k && strncasecmp(host + len - k, "localhost", k) == 0 &&
	    (len == k || host[len - k - 1] == '.');
}

static enum dg_dns_rc
localhost_addrs(int port, struct dg_addr **out, size_t *count)
{
	struct dg_addr *v4 = NULL, *v6 = NULL;
	size_t n4 = 0, n6 = 0;

	numeric_addrs("127.0.0.1", port, &v4, &n4);
	numeric_addrs("::1", port, &v6, &n6);
	*out = xcalloc(n4 + n6 + 1, sizeof(**out));
	if (n4)
		memcpy(*out, v4, n4 * sizeof(**out));
	if (n6)
		memcpy(*out + n4, v6, n6 * sizeof(**out));
	*count = n4 + n6;
	free(v4);
	free(v6);
	return *count ? DG_DNS_OK : DG_DNS_FAILED;
}

/* One getaddrinfo of family through its own channel; the addresses are
 * appended to *out.  *status and *cut say what happened (for explain()). */
static enum dg_dns_rc
addrs_family(const char *host, int port, const char *resolver, long long deadline, int family,
    struct dg_addr **out, size_t *count, int *status, int *cut, struct buf *why)
{
	struct ares_addrinfo_hints hints;
	struct ares_addrinfo_node *node;
	struct addr_query q;
	ares_channel ch;
	char service[16];
	enum dg_dns_rc rc;
	size_t n = 0;

	*cut = 0;
	if (channel_open(&ch, resolver, why) != 0) {
		*status = -1;	/* why already says it */
		return DG_DNS_FAILED;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	memset(&q, 0, sizeof(q));
	q.pending = 1;
	ares_getaddrinfo(ch, host, service, &hints, addr_done, &q);
	*cut = channel_drive(ch, &q.pending, deadline);
	ares_destroy(ch);	/* runs any callback still owed */
	rc = status_rc(q.status, *cut);
	*status = q.status;
	if (rc == DG_DNS_OK && q.res) {
		for (node = q.res->nodes; node; node = node->ai_next)
			n++;
		*out = xrealloc(*out, (*count + n + 1) * sizeof(**out));
		for (node = q.res->nodes; node; node = node->ai_next) {
			struct dg_addr *a = &(*out)[*count];
			if ((size_t)node->ai_addrlen > sizeof(a->sa))
				continue;
			memset(a, 0, sizeof(*a));
			memcpy(&a->sa, node->ai_addr, (size_t)node->ai_addrlen);
			a->len = (socklen_t)node->ai_addrlen;
			(*count)++;
		}
	}
	if (q.res)
		ares_freeaddrinfo(q.res);
	if (rc == DG_DNS_OK && n == 0) {
		rc = DG_DNS_NOT_FOUND;
		*status = ARES_ENODATA;
	}
	return rc;
}

enum dg_dns_rc
dg_dns_addrs(const char *host, int port, const char *resolver, long long deadline,
    struct dg_addr **out, size_t *count, struct buf *why)
{
	enum dg_dns_rc rc;
	int status, cut, st2, cut2;

	*out = NULL;
	*count = 0;
	if (dg_host_is_ip(host))
		return numeric_addrs(host, port, out, count);
	if (is_localhost(host))
		return localhost_addrs(port, out, count);
	rc = addrs_family(host, port, resolver, deadline, AF_UNSPEC, out, count, &status, &cut, why);
	if (rc == DG_DNS_FAILED && status != -1) {
		/* c-ares fails the pair when one of A/AAAA is refused or fails
		 * (a forwarder without upstream refuses AAAA of a name it only
		 * has an A for): ask for each alone, keep what answers */
		addrs_family(host, port, resolver, deadline, AF_INET, out, count, &st2, &cut2, NULL);
		addrs_family(host, port, resolver, deadline, AF_INET6, out, count, &st2, &cut2, NULL);
		if (*count > 0)
			rc = DG_DNS_OK;
	}
	if (rc != DG_DNS_OK) {
		free(*out);
		*out = NULL;
		*count = 0;
		if (status != -1)
			explain(why, host, status, cut, resolver);
	}
	return rc;
}

/* ------------------------------------------------------------------ SRV */

struct srv_query {
	int		*pending;
	int		 service;
	int		 status;
	int		 answered;
	struct dg_srv	**list;
	size_t		*count;
};

static void
srv_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct srv_query *q = arg;
	struct ares_srv_reply *srv = NULL, *s;

	(void)timeouts;
	q->status = status;
	q->answered = 1;
	(*q->pending)--;
	if (status != ARES_SUCCESS)
		return;
	if ((q->status = ares_parse_srv_reply(abuf, alen, &srv)) != ARES_SUCCESS)
		return;
	for (s = srv; s; s = s->next) {
		size_t hl = s->host ? strlen(s->host) : 0;
		struct dg_srv *d;

		while (hl > 0 && s->host[hl - 1] == '.')
			hl--;
		if (hl == 0 || s->port == 0)
			continue;	/* "." : the service is decidedly not offered */
		*q->list = xrealloc(*q->list, (*q->count + 1) * sizeof(**q->list));
		d = &(*q->list)[(*q->count)++];
		d->target = xstrndup(s->host, hl);
		d->port = s->port;
		d->priority = s->priority;
		d->weight = s->weight;
		d->service = q->service;
	}
	ares_free_data(srv);
}

static int
srv_cmp(const void *a, const void *b)
{
	const struct dg_srv *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return strcasecmp(x->target, y->target);
}

enum dg_dns_rc
dg_dns_srv(const char *const *names, size_t name_count, const char *resolver,
    long long deadline, struct dg_srv **out, size_t *count, struct buf *why)
{
	struct srv_query *q;
	ares_channel ch;
	enum dg_dns_rc rc = DG_DNS_NOT_FOUND;
	int pending = 0, cut;
	size_t i;

	*out = NULL;
	*count = 0;
	if (name_count == 0)
		return DG_DNS_NOT_FOUND;
	if (channel_open(&ch, resolver, why) != 0)
		return DG_DNS_FAILED;
	q = xcalloc(name_count, sizeof(*q));
	for (i = 0; i < name_count; i++) {
		q[i].pending = &pending;
		q[i].service = (int)i;
		q[i].list = out;
		q[i].count = count;
		pending++;
		ares_query(ch, names[i], DNS_C_IN, DNS_T_SRV, srv_done, &q[i]);
	}
	cut = channel_drive(ch, &pending, deadline);
	ares_destroy(ch);
	if (*count > 0) {
		qsort(*out, *count, sizeof(**out), srv_cmp);
		rc = DG_DNS_OK;
	} else {
		/* the worst outcome explains the empty answer */
		for (i = 0; i < name_count; i++) {
			enum dg_dns_rc r = status_rc(q[i].status, cut);
			if (r == DG_DNS_OK)
				r = DG_DNS_NOT_FOUND;	/* an answer without usable targets */
			if (i == 0 || r > rc) {
				rc = r;
				if (why) {
					buf_reset(why);
					explain(why, names[i], q[i].status, cut, resolver);
				}
			}
		}
	}
	free(q);
	return rc;
}

void
dg_dns_srv_free(struct dg_srv *srv, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(srv[i].target);
	free(srv);
}
