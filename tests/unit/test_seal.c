/*
 * test_seal - X-Helpgate-Seal (shared/seal.c) and the forged-header name
 * set (shared/nameset.c): what a sender cannot fake, and what stays linear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "nameset.h"
#include "seal.h"
#include "t.h"

static char dir[] = "/tmp/hg-test-seal.XXXXXX";

static void
test_key_file(void)
{
	struct seal_key a, b;
	char path[256], err[256] = "";
	struct stat st;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/seal.key", dir);
	T_EQ_INT(seal_key_load(path, &a, err, sizeof(err)), 0);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT((int)(st.st_mode & 0777), 0600);		/* made private */
	T_EQ_INT((int)st.st_size, 65);
	T_EQ_INT(seal_key_load(path, &b, err, sizeof(err)), 0);	/* read back, not made again */
	T_CHECK(memcmp(a.bytes, b.bytes, SEAL_KEY_LEN) == 0);

	snprintf(path, sizeof(path), "%s/bad.key", dir);
	fp = fopen(path, "w");
	fputs("not a key at all, not hex, not 64 digits long at all, really..\n", fp);
	fclose(fp);
	T_EQ_INT(seal_key_load(path, &a, err, sizeof(err)), -1);
	T_CONTAINS(err, "not a seal key");
	snprintf(path, sizeof(path), "%s/no-such-dir/seal.key", dir);
	T_EQ_INT(seal_key_load(path, &a, err, sizeof(err)), -1);
	T_CONTAINS(err, "cannot create");
}

static void
test_make_verify(void)
{
	struct seal_key key, other;
	char v[SEAL_VALUE_MAX], forged[SEAL_VALUE_MAX];
	time_t now = 1796600000;
	long long c = 0;

	memset(key.bytes, 7, sizeof(key.bytes));
	memset(other.bytes, 8, sizeof(other.bytes));
	seal_make(&key, "hg-12.ack.abc@example.com", 12, NULL, now, v, sizeof(v));
	T_CONTAINS(v, "v=1; t=1796600000; c=12; s=");
	T_EQ_INT((int)strlen(v), (int)strlen("v=1; t=1796600000; c=12; s=") + 64);

	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", NULL, now, &c), 1);
	T_EQ_INT((int)c, 12);
	/* the Message-ID as a header carries it: brackets, blanks */
	T_EQ_INT(seal_verify(&key, v, " <hg-12.ack.abc@example.com> ", NULL, now + 60, NULL), 1);
	/* folded the way compose writes it */
	char folded[SEAL_VALUE_MAX + 8];
	snprintf(folded, sizeof(folded), "%.*s\r\n %s", (int)(strstr(v, " s=") - v), v, strstr(v, " s=") + 1);
	T_EQ_INT(seal_verify(&key, folded, "hg-12.ack.abc@example.com", NULL, now, NULL), 1);

	/* what a sender cannot do */
	T_EQ_INT(seal_verify(&other, v, "hg-12.ack.abc@example.com", NULL, now, NULL), 0);	/* another key */
	T_EQ_INT(seal_verify(&key, v, "hg-13.ack.abc@example.com", NULL, now, NULL), 0);	/* another message */
	T_EQ_INT(seal_verify(&key, v, "", NULL, now, NULL), 0);
	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", NULL, now + SEAL_MAX_AGE + 1, NULL), 0);
	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", NULL, now - 7200, NULL), 0);	/* from the future */
	snprintf(forged, sizeof(forged), "%s", v);
	forged[strlen("v=1; t=1796600000; c=")] = '9';		/* another case */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	snprintf(forged, sizeof(forged), "%s", v);
	forged[strlen(forged) - 1] ^= 1;			/* one bit of the MAC */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	snprintf(forged, sizeof(forged), "%s extra", v);		/* trailing junk */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "v=1; t=1796600000; c=12; s=00", "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "", "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	T_EQ_INT(seal_verify(&key, NULL, "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "v=2; t=1796600000; c=12; s=", "hg-12.ack.abc@example.com", NULL, now, NULL), 0);
}

/* The cover: headers a sender adds or changes break the seal; an MTA's
 * refolding and headers outside it do not. */
static void
test_cover(void)
{
	struct seal_key key;
	struct buf made, seen;
	char v[SEAL_VALUE_MAX];
	time_t now = 1796600000;
	const char *id = "hg-12.ack.abc@example.com";

	memset(key.bytes, 7, sizeof(key.bytes));
	buf_init(&made, SEAL_COVER_MAX);
	seal_cover_add(&made, "Subject", "[Case #12] Re: outgoing mail\n is not sent");
	seal_cover_add(&made, "Date", "Mon, 7 Dec 2026 04:30:00 +0000");
	seal_cover_add(&made, "X-Helpgate-Case", "12");
	seal_make(&key, id, 12, &made, now, v, sizeof(v));
	T_EQ_STR(buf_str(&made), "subject:[Case #12] Re: outgoing mail is not sent\nx-helpgate-case:12\n");

	/* as the milter sees it: refolded, other headers between, the seal */
	buf_init(&seen, SEAL_COVER_MAX);
	seal_cover_add(&seen, "Received", "from localhost");
	seal_cover_add(&seen, "subject", " [Case #12] Re: outgoing mail\r\n\tis  not sent ");
	seal_cover_add(&seen, "X-HELPGATE-CASE", "12");
	seal_cover_add(&seen, "X-Helpgate-Seal", v);
	T_EQ_INT(seal_verify(&key, v, id, &seen, now, NULL), 1);

	/* a notice header added to a genuine acknowledgement */
	seal_cover_add(&seen, "X-Helpgate-Notice", "escalation");
	T_EQ_INT(seal_verify(&key, v, id, &seen, now, NULL), 0);
	/* the Subject changed */
	buf_reset(&seen);
	seal_cover_add(&seen, "Subject", "[Case #12] Re: please wire the money");
	seal_cover_add(&seen, "X-Helpgate-Case", "12");
	T_EQ_INT(seal_verify(&key, v, id, &seen, now, NULL), 0);
	/* a second Subject */
	buf_reset(&seen);
	seal_cover_add(&seen, "Subject", "[Case #12] Re: outgoing mail is not sent");
	seal_cover_add(&seen, "X-Helpgate-Case", "12");
	seal_cover_add(&seen, "Subject", "urgent");
	T_EQ_INT(seal_verify(&key, v, id, &seen, now, NULL), 0);
	/* no cover at all */
	T_EQ_INT(seal_verify(&key, v, id, NULL, now, NULL), 0);
	/* a cover past its cap never verifies, even when the MACs agree */
	buf_reset(&made);
	buf_reset(&seen);
	for (int i = 0; i < 3000; i++) {
		seal_cover_add(&made, "X-Helpgate-Filler", "0123456789012345678901234567890123456789");
		seal_cover_add(&seen, "X-Helpgate-Filler", "0123456789012345678901234567890123456789");
	}
	T_EQ_INT(seen.truncated, 1);
	seal_make(&key, id, 12, &made, now, v, sizeof(v));
	T_EQ_INT(seal_verify(&key, v, id, &seen, now, NULL), 0);
	buf_free(&made);
	buf_free(&seen);
}

static int each_total, each_names;

static void
count_each(const char *name, int count, void *arg)
{
	(void)name;
	(void)arg;
	each_total += count;
	each_names++;
}

static void
test_nameset(void)
{
	struct nameset set = { 0 };
	char name[64];
	clock_t t0;
	double small, big;

	T_EQ_INT(nameset_add(&set, "X-Helpgate-Case"), 1);
	T_EQ_INT(nameset_add(&set, "x-helpgate-case"), 2);	/* one name, any case */
	T_EQ_INT(nameset_add(&set, "X-HELPGATE-CASE"), 3);
	T_EQ_INT(nameset_add(&set, "X-Helpgate-Urgency"), 1);
	each_total = each_names = 0;
	nameset_each(&set, count_each, NULL);
	T_EQ_INT(each_names, 2);
	T_EQ_INT(each_total, 4);
	nameset_clear(&set);
	each_total = each_names = 0;
	nameset_each(&set, count_each, NULL);
	T_EQ_INT(each_names, 0);

	/* 64k distinct names cost about 16 times 4k: linear, not quadratic
	 * (a list searched per name was 10.6 s for 64k). */
	t0 = clock();
	for (int i = 0; i < 4096; i++) {
		snprintf(name, sizeof(name), "X-Helpgate-Pad%d", i);
		nameset_add(&set, name);
	}
	small = (double)(clock() - t0);
	nameset_clear(&set);
	t0 = clock();
	for (int i = 0; i < 65536; i++) {
		snprintf(name, sizeof(name), "X-Helpgate-Pad%d", i);
		nameset_add(&set, name);
	}
	big = (double)(clock() - t0);
	each_total = each_names = 0;
	nameset_each(&set, count_each, NULL);
	T_EQ_INT(each_names, 65536);
	nameset_clear(&set);
	printf("# nameset: 4096 names %.1f ms, 65536 names %.1f ms (ratio %.1f; 16 is linear)\n",
	    small * 1000 / CLOCKS_PER_SEC, big * 1000 / CLOCKS_PER_SEC, small > 0 ? big / small : 0);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_key_file();
	test_make_verify();
	test_cover();
	test_nameset();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
