/*
 * diag_dns - the diagnosis's own resolver: A/AAAA and SRV through c-ares,
 * bounded by a deadline and pointable at one server (DiagnoseResolver).
 *
 * Why not getaddrinfo(): it cannot be given a timeout nor a server, so a
 * dead resolver would break the DiagnoseTimeout promise and tests could not
 * resolve their own names without sending queries off the machine.
 *
 * resolver: "ADDRESS[:PORT]" ("127.0.0.1:5353", "[::1]:53", "::1"): DNS
 * goes only there, without search domains; NULL or "": the servers and
 * search list of the system's resolv.conf, still bounded.  /etc/hosts is
 * read first in both cases, as by a mail client.  An IP
 * literal host is answered without any query.  Every wait also ends when
 * the calling thread's dg_cancel_fd (diag_int.h) becomes readable.
 * Thread-safe: each call has its own c-ares channel.
 */
#ifndef HG_DIAG_DNS_H
#define HG_DIAG_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

enum dg_dns_rc {
	DG_DNS_OK,
	DG_DNS_NOT_FOUND,	/* NXDOMAIN, or the name has no such record */
	DG_DNS_TIMEOUT,		/* the deadline passed (or the call was cancelled) */
	DG_DNS_FAILED,		/* SERVFAIL, refused, unreachable resolver, bad input */
};

struct dg_addr {
	struct sockaddr_storage	sa;	/* with the port set */
	socklen_t		len;
};

struct dg_srv {
	char	*target;	/* without the trailing dot; owned */
	int	 port;
	int	 priority;
	int	 weight;
	int	 service;	/* index into the names given to dg_dns_srv() */
};

/* 1 if resolver is a usable "ADDRESS[:PORT]"; for the config check. */
int	dg_dns_resolver_valid(const char *resolver);

/*
 * The addresses of host (A and AAAA, in c-ares' RFC 6724 order) with port
 * set.  *out is allocated (free()); why gets the resolver's words on
 * failure.  Never waits past deadline (CLOCK_MONOTONIC ms, dg_now_ms()).
 */
enum dg_dns_rc dg_dns_addrs(const char *host, int port, const char *resolver,
	    long long deadline, struct dg_addr **out, size_t *count, struct buf *why);

/*
 * The SRV records of every name in names[] (queried at once), sorted by
 * priority, then weight (heavier first), then the order of names.  Targets
 * "." (service decidedly not available) are left out.  DG_DNS_OK when
 * there is at least one target; otherwise the worst outcome of the
 * queries (not found < timed out < failed), explained in why.  Free
 * *out with dg_dns_srv_free().
 */
enum dg_dns_rc dg_dns_srv(const char *const *names, size_t name_count, const char *resolver,
	    long long deadline, struct dg_srv **out, size_t *count, struct buf *why);
void	dg_dns_srv_free(struct dg_srv *srv, size_t count);

const char *dg_dns_rc_name(enum dg_dns_rc rc);

#endif
