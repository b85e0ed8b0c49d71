/*
 * diag_testserver.h - what the diagnosis unit tests (test_diag.c,
 * test_diag_imap.c, test_diag_alt.c) share for their in-process fault
 * servers: loopback sockets, the forked server process, throw-away
 * certificates.  Each test is one binary, so these are static; include
 * after the system headers (sockets, signal, prctl, gnutls) and xalloc.h.
 */
#ifndef HG_DIAG_TESTSERVER_H
#define HG_DIAG_TESTSERVER_H

/* The test's scratch directory (certificates, logs); main makes it. */
static char tmpdir[64] __attribute__((unused));

/* A socket of type bound to 127.0.0.1, port 0; its port in *port. */
static inline int
bound_socket(int type, int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, type, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("bind");
		exit(2);
	}
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port with nothing listening on it. */
static inline int
closed_port(void)
{
	int port, fd = bound_socket(SOCK_STREAM, &port);

	close(fd);
	return port;
}

/*
 * Forks a server: the parent gets the child's pid; the child gets 0, set
 * to die with the test (even when it crashes) and to ignore SIGPIPE, and
 * then accepts on its listening socket.
 */
static inline pid_t
server_fork(void)
{
	pid_t pid, parent = getpid();

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		signal(SIGPIPE, SIG_IGN);
	}
	return pid;
}

/* Self-signed EC certificate for dns (and IP 127.0.0.1 when with_ip),
 * valid from not_before to not_after (seconds from now), written as
 * tmpdir/name.crt and tmpdir/name.key. */
static inline void
make_cert(const char *name, const char *dns, int with_ip, long not_before, long not_after)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[4] = { 1, 2, 3, 4 }, ip[4] = { 127, 0, 0, 1 };
	char path[128];
	unsigned char out[8192];
	size_t outlen;
	FILE *f;
	time_t now = time(NULL);

	gnutls_x509_privkey_init(&key);
	gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	gnutls_x509_crt_init(&crt);
	gnutls_x509_crt_set_version(crt, 3);
	gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, dns, (unsigned)strlen(dns));
	gnutls_x509_crt_set_activation_time(crt, now + not_before);
	gnutls_x509_crt_set_expiration_time(crt, now + not_after);
	gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, dns, (unsigned)strlen(dns), GNUTLS_FSAN_SET);
	if (with_ip)
		gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND);
	gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
	gnutls_x509_crt_set_key(crt, key);
	if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0) {
		fprintf(stderr, "cannot sign\n");
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/%s.crt", tmpdir, name);
	outlen = sizeof(out);
	gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM, out, &outlen);
	f = fopen(path, "w");
	fwrite(out, 1, outlen, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", tmpdir, name);
	outlen = sizeof(out);
	gnutls_x509_privkey_export(key, GNUTLS_X509_FMT_PEM, out, &outlen);
	f = fopen(path, "w");
	fwrite(out, 1, outlen, f);
	fclose(f);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

/* tmpdir/name.ext; caller frees. */
static inline char *
tpath(const char *name, const char *ext)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s.%s", tmpdir, name, ext);
	return xstrdup(p);
}

#endif
