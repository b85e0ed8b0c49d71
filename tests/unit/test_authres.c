/*
 * test_authres - Authentication-Results as real MTAs write them, and the
 * From check the acknowledgement depends on (shared/authres.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authres.h"
#include "buf.h"
#include "config.h"
#include "msg.h"
#include "t.h"

static void
test_parse(void)
{
	struct authres_result r[8];
	char id[128];
	size_t n;

	/* OpenDKIM + OpenDMARC on one host */
	n = authres_parse("mx.example.net; dkim=pass (2048-bit key; unprotected) header.d=client.test "
	    "header.i=@client.test header.b=\"AbCd\"", id, sizeof(id), r, 8);
	T_EQ_STR(id, "mx.example.net");
	T_EQ_INT((int)n, 1);
	T_EQ_STR(r[0].method, "dkim");
	T_EQ_STR(r[0].result, "pass");
	T_EQ_STR(r[0].domain, "client.test");
	/* rspamd: several resinfos, smtp.mailfrom as an address */
	n = authres_parse("mx.example.net;\r\n\tdkim=none;\r\n\tspf=pass (mx.example.net: domain of "
	    "ann@Client.TEST designates 192.0.2.1 as permitted sender) smtp.mailfrom=ann@Client.TEST;\r\n"
	    "\tdmarc=pass (policy=reject) header.from=client.test", id, sizeof(id), r, 8);
	T_EQ_INT((int)n, 3);
	T_EQ_STR(r[0].method, "dkim");
	T_EQ_STR(r[0].result, "none");
	T_EQ_STR(r[1].method, "spf");
	T_EQ_STR(r[1].domain, "client.test");		/* lowercased, the address's domain */
	T_EQ_STR(r[2].method, "dmarc");
	T_EQ_STR(r[2].domain, "client.test");
	/* a version after the authserv-id, blanks around "=" and a comment with ";" in it */
	n = authres_parse("  MX.Example.NET 1 ; spf = fail (sender ; not allowed) smtp.mailfrom = x@evil.test",
	    id, sizeof(id), r, 8);
	T_EQ_STR(id, "mx.example.net");
	T_EQ_INT((int)n, 1);
	T_EQ_STR(r[0].method, "spf");
	T_EQ_STR(r[0].result, "fail");
	T_EQ_STR(r[0].domain, "evil.test");
	/* a quoted value holding ";" does not start a resinfo */
	n = authres_parse("mx; dkim=pass reason=\"ok; fine\" header.d=a.test; spf=pass smtp.mailfrom=b.test",
	    id, sizeof(id), r, 8);
	T_EQ_INT((int)n, 2);
	T_EQ_STR(r[1].domain, "b.test");
	/* none, junk, empty, unbalanced */
	T_EQ_INT((int)authres_parse("mx.example.net; none", id, sizeof(id), r, 8), 0);
	T_EQ_INT((int)authres_parse("", id, sizeof(id), r, 8), 0);
	T_EQ_INT((int)authres_parse(";;;;(((", id, sizeof(id), r, 8), 0);
	T_EQ_INT((int)authres_parse("mx; dkim=pass (unclosed comment header.d=x.test", id, sizeof(id), r, 8), 1);
	/* more results than room: the first ones, no overflow */
	T_EQ_INT((int)authres_parse("mx; a=pass; b=pass; c=pass; d=pass", id, sizeof(id), r, 2), 2);
}

static void
test_org_domain(void)
{
	char o[256];

	authres_org_domain("mail.client.co.uk", o, sizeof(o));
	T_EQ_STR(o, "client.co.uk");
	authres_org_domain("a.b.Example.COM", o, sizeof(o));
	T_EQ_STR(o, "example.com");
	authres_org_domain("co.uk", o, sizeof(o));	/* a public suffix: itself */
	T_EQ_STR(o, "co.uk");
}

/* The verdict for a message of headers (From + extra) and an envelope. */
static const char *
verdict(struct config *cfg, const char *headers, const char *envelope)
{
	static char why[64];
	char raw[4096];
	struct msg *m;
	enum authres_verdict v;

	snprintf(raw, sizeof(raw), "%s\r\nSubject: x\r\n\r\nbody\r\n", headers);
	m = msg_parse(raw, strlen(raw), 4096);
	v = authres_check(cfg, m, envelope, why, sizeof(why));
	msg_free(m);
	if (v == AUTHRES_VERIFIED)
		memmove(why + 2, why, strlen(why) + 1), why[0] = '+', why[1] = ' ';
	return why;
}

static void
test_check(void)
{
	char path[] = "/tmp/hg-test-authres.XXXXXX";
	char conf[4096];
	struct buf err;
	struct config *cfg;
	FILE *fp;
	int fd = mkstemp(path);

	if (fd < 0)
		return;
	fp = fdopen(fd, "w");
	fprintf(fp, "SupportAddress support@example.com\nTrustedAuthservID mx.example.net\n");
	fclose(fp);
	buf_init(&err, 4096);
	cfg = config_load(path, &err);
	T_CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", buf_str(&err));
		return;
	}
	(void)conf;
	/* no trusted results: the envelope decides */
	T_EQ_STR(verdict(cfg, "From: Ann <ann@client.test>", "<ann@client.test>"), "+ envelope-aligned");
	T_EQ_STR(verdict(cfg, "From: Ann <ann@mail.client.test>", "bounce@client.test"), "+ envelope-aligned");
	T_EQ_STR(verdict(cfg, "From: Victim <victim+7@victim.test>", "<attacker@evil.test>"), "not-aligned");
	T_EQ_STR(verdict(cfg, "From: Victim <victim@victim.test>", "<>"), "not-aligned");
	T_EQ_STR(verdict(cfg, "Subject: none", "<x@y.test>"), "no-from");
	/* trusted DKIM aligned wins over a foreign envelope */
	T_EQ_STR(verdict(cfg, "From: ann@client.test\r\nAuthentication-Results: mx.example.net; "
	    "dkim=pass header.d=client.test; spf=fail smtp.mailfrom=evil.test", "<x@evil.test>"),
	    "+ dkim-aligned");
	T_EQ_STR(verdict(cfg, "From: ann@client.test\r\nAuthentication-Results: mx.example.net; "
	    "spf=pass smtp.mailfrom=bounces@mail.client.test", "<bounces@mail.client.test>"), "+ spf-aligned");
	/* results from anyone else are not read, however good they look */
	T_EQ_STR(verdict(cfg, "From: victim@victim.test\r\nAuthentication-Results: evil.test; "
	    "dkim=pass header.d=victim.test; dmarc=pass header.from=victim.test", "<a@evil.test>"), "not-aligned");
	/* trusted results present but none aligned: the envelope no longer helps */
	T_EQ_STR(verdict(cfg, "From: victim@victim.test\r\nAuthentication-Results: mx.example.net; "
	    "dkim=pass header.d=evil.test; spf=pass smtp.mailfrom=victim.test", "<victim@victim.test>"),
	    "+ spf-aligned");
	T_EQ_STR(verdict(cfg, "From: victim@victim.test\r\nAuthentication-Results: mx.example.net; "
	    "dkim=pass header.d=evil.test", "<victim@victim.test>"), "not-aligned");
	T_EQ_STR(verdict(cfg, "From: victim@victim.test\r\nAuthentication-Results: mx.example.net; "
	    "dmarc=fail header.from=victim.test", "<victim@victim.test>"), "dmarc-fail");
	/* AckPolicy dmarc and any */
	cfg->ack_policy = CONFIG_ACK_DMARC;
	T_EQ_STR(verdict(cfg, "From: ann@client.test\r\nAuthentication-Results: mx.example.net; "
	    "dkim=pass header.d=client.test", "<ann@client.test>"), "no-dmarc-result");
	T_EQ_STR(verdict(cfg, "From: ann@client.test\r\nAuthentication-Results: mx.example.net; "
	    "dmarc=pass header.from=client.test", "<x@evil.test>"), "+ dmarc-pass");
	cfg->ack_policy = CONFIG_ACK_ANY;
	T_EQ_STR(verdict(cfg, "From: victim@victim.test", "<a@evil.test>"), "+ policy-any");
	config_unref(cfg);
	buf_free(&err);
	unlink(path);
}

static void
test_linear(void)
{
	/* a header of 200k "(" and ";" costs about 4 times one of 50k */
	size_t sizes[2] = { 50000, 200000 };
	double t[2];
	struct authres_result r[4];
	char id[64];

	for (int k = 0; k < 2; k++) {
		char *v = malloc(sizes[k] + 1);
		clock_t t0;

		for (size_t i = 0; i < sizes[k]; i++)
			v[i] = "(;\"=. a"[i % 7];
		v[sizes[k]] = '\0';
		t0 = clock();
		for (int rep = 0; rep < 20; rep++)
			authres_parse(v, id, sizeof(id), r, 4);
		t[k] = (double)(clock() - t0);
		free(v);
	}
	printf("# authres_parse: 50k %.1f ms, 200k %.1f ms (x%.1f for x4)\n", t[0] * 1000 / CLOCKS_PER_SEC / 20,
	    t[1] * 1000 / CLOCKS_PER_SEC / 20, t[0] > 0 ? t[1] / t[0] : 0);
	T_CHECK(t[0] <= 0 || t[1] / t[0] < 16);	/* quadratic would be 16 */
}

int
main(void)
{
	test_parse();
	test_org_domain();
	test_check();
	test_linear();
	return t_done();
}
