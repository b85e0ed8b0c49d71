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
	seal_make(&key, "hg-12.ack.abc@example.com", 12, now, v, sizeof(v));
	T_CONTAINS(v, "v=1; t=1796600000; c=12; s=");
	T_EQ_INT((int)strlen(v), (int)strlen("v=1; t=1796600000; c=12; s=") + 64);

	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", now, &c), 1);
	T_EQ_INT((int)c, 12);
	/* the Message-ID as a header carries it: brackets, blanks */
	T_EQ_INT(seal_verify(&key, v, " <hg-12.ack.abc@example.com> ", now + 60, NULL), 1);
	/* folded the way compose writes it */
	char folded[SEAL_VALUE_MAX + 8];
	snprintf(folded, sizeof(folded), "%.*s\r\n %s", (int)(strstr(v, " s=") - v), v, strstr(v, " s=") + 1);
	T_EQ_INT(seal_verify(&key, folded, "hg-12.ack.abc@example.com", now, NULL), 1);

	/* what a sender cannot do */
	T_EQ_INT(seal_verify(&other, v, "hg-12.ack.abc@example.com", now, NULL), 0);	/* another key */
	T_EQ_INT(seal_verify(&key, v, "hg-13.ack.abc@example.com", now, NULL), 0);	/* another message */
	T_EQ_INT(seal_verify(&key, v, "", now, NULL), 0);
	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", now + SEAL_MAX_AGE + 1, NULL), 0);
	T_EQ_INT(seal_verify(&key, v, "hg-12.ack.abc@example.com", now - 7200, NULL), 0);	/* from the future */
	snprintf(forged, sizeof(forged), "%s", v);
	forged[strlen("v=1; t=1796600000; c=")] = '9';		/* another case */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", now, NULL), 0);
	snprintf(forged, sizeof(forged), "%s", v);
	forged[strlen(forged) - 1] ^= 1;			/* one bit of the MAC */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", now, NULL), 0);
	snprintf(forged, sizeof(forged), "%s extra", v);		/* trailing junk */
	T_EQ_INT(seal_verify(&key, forged, "hg-12.ack.abc@example.com", now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "v=1; t=1796600000; c=12; s=00", "hg-12.ack.abc@example.com", now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "", "hg-12.ack.abc@example.com", now, NULL), 0);
	T_EQ_INT(seal_verify(&key, NULL, "hg-12.ack.abc@example.com", now, NULL), 0);
	T_EQ_INT(seal_verify(&key, "v=2; t=1796600000; c=12; s=", "hg-12.ack.abc@example.com", now, NULL), 0);
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
	test_nameset();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
