/*
 * t.h - the smallest unit-test harness that tells the truth.
 *
 * T_CHECK(cond) records one assertion; T_EQ_STR / T_EQ_INT print both sides
 * on failure.  t_done() prints "N passed, N failed" for this program and
 * returns the exit status; tests/run.sh adds the counts up.
 */
#ifndef HG_T_H
#define HG_T_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed;

#define T_CHECK(cond) do {						\
	if (cond) t_passed++;						\
	else { t_failed++;						\
		fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define T_EQ_STR(a, b) do {						\
	const char *t_a = (a), *t_b = (b);				\
	if (t_a && t_b && strcmp(t_a, t_b) == 0) t_passed++;		\
	else { t_failed++;						\
		fprintf(stderr, "FAIL %s:%d: %s == %s\n  got:      \"%s\"\n  expected: \"%s\"\n", \
		    __FILE__, __LINE__, #a, #b, t_a ? t_a : "(null)", t_b ? t_b : "(null)"); } \
} while (0)

#define T_EQ_INT(a, b) do {						\
	long long t_a = (long long)(a), t_b = (long long)(b);		\
	if (t_a == t_b) t_passed++;					\
	else { t_failed++;						\
		fprintf(stderr, "FAIL %s:%d: %s == %s\n  got:      %lld\n  expected: %lld\n", \
		    __FILE__, __LINE__, #a, #b, t_a, t_b); }		\
} while (0)

#define T_CONTAINS(hay, needle) do {					\
	const char *t_h = (hay), *t_n = (needle);			\
	if (t_h && t_n && strstr(t_h, t_n)) t_passed++;			\
	else { t_failed++;						\
		fprintf(stderr, "FAIL %s:%d: \"%s\" should contain \"%s\"\n", \
		    __FILE__, __LINE__, t_h ? t_h : "(null)", t_n ? t_n : "(null)"); } \
} while (0)

static inline int
t_done(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

#endif
