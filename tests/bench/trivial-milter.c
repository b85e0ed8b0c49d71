/*
 * trivial-milter - the benchmark's baseline: the cheapest useful libmilter
 * filter.  It adds "X-Trivial: 1" to every message at end-of-message and
 * does nothing else.
 *
 *   trivial-milter -p unix:/path/sock      (or inet:PORT@127.0.0.1)
 *
 * Every callback but eom is NULL, so libmilter tells the MTA to skip those
 * steps (SMFIP_NO*): Postfix sends connect info, envelope, headers and body
 * to nobody and only waits for the reply to end-of-message.
 *
 * A unix socket is made mode 0666 so that Postfix (user postfix) can connect
 * whoever runs the filter.  For an inet socket the listening socket gets
 * TCP_NODELAY, which accepted connections inherit on Linux: without it the
 * small milter replies wait for delayed ACKs (Nagle), which is several times
 * slower.  libmilter does not hand out the listening descriptor, so it is
 * found among the open descriptors right after smfi_opensocket(), when it is
 * the only listening socket of the process.
 *
 * libmilter handles SIGTERM/SIGINT/SIGHUP itself (smfi_main returns).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static sfsistat
trivial_eom(SMFICTX *ctx)
{
	char name[] = "X-Trivial", value[] = "1";

	if (smfi_addheader(ctx, name, value) != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

/* Sets TCP_NODELAY on every listening TCP socket; returns how many. */
static int
nodelay_listeners(void)
{
	int fd, n = 0, one = 1;
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 4096)
		max = 4096;
	for (fd = 3; fd < max; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int acc = 0;
		socklen_t alen = sizeof(acc);

		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			continue;
		if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) != 0 || !acc)
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
			fprintf(stderr, "trivial-milter: TCP_NODELAY: %s\n", strerror(errno));
			continue;
		}
		n++;
	}
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: trivial-milter -p unix:PATH|inet:PORT@HOST\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	char name[] = "trivial-milter";
	struct smfiDesc desc = {
		.xxfi_name = name,
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = SMFIF_ADDHDRS,
		.xxfi_eom = trivial_eom,
	};
	char *spec = NULL;
	int c;

	while ((c = getopt(argc, argv, "p:")) != -1) {
		switch (c) {
		case 'p':
			spec = optarg;
			break;
		default:
			usage();
		}
	}
	if (spec == NULL || optind != argc)
		usage();

	if (smfi_setconn(spec) != MI_SUCCESS) {
		fprintf(stderr, "trivial-milter: bad socket %s\n", spec);
		return 1;
	}
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "trivial-milter: smfi_register failed\n");
		return 1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "trivial-milter: cannot open %s\n", spec);
		return 1;
	}
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		const char *path = strchr(spec, ':') + 1;

		if (chmod(path, 0666) != 0)
			fprintf(stderr, "trivial-milter: chmod %s: %s\n", path, strerror(errno));
	} else if (nodelay_listeners() == 0) {
		fprintf(stderr, "trivial-milter: no listening TCP socket for TCP_NODELAY\n");
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
