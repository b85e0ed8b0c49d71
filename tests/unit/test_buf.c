/*
 * test_buf - shared/buf.c: the cap, printf, steal, and the secret mode
 * (buf_init_secret: what it leaves behind in memory it still owns is
 * wiped; the blocks it frees are wiped before, which no test can read).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "t.h"

static int
all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\0')
			return 0;
	return 1;
}

static void
test_plain(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 10);
	T_EQ_STR(buf_str(&b), "");
	T_EQ_INT(buf_append_str(&b, "hello"), 0);
	T_EQ_INT(buf_printf(&b, " %d", 42), 0);
	T_EQ_STR(buf_str(&b), "hello 42");
	T_EQ_INT(buf_append_str(&b, "xyz"), -1);	/* past the cap */
	T_EQ_STR(buf_str(&b), "hello 42xy");
	T_EQ_INT(b.truncated, 1);
	s = buf_steal(&b);
	T_EQ_STR(s, "hello 42xy");
	T_EQ_INT(b.len, 0);
	free(s);
	buf_free(&b);
}

static void
test_secret(void)
{
	struct buf b;
	char big[1000];
	size_t cap;

	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init_secret(&b, 4096);
	T_EQ_INT(b.secret, 1);
	/* growth copies (and wipes the old block): the content is whole */
	buf_append_str(&b, "AUTH PLAIN ");
	for (int i = 0; i < 3; i++)
		buf_append_str(&b, big);
	T_EQ_INT(b.len, 11 + 3 * 999);
	T_CHECK(strncmp(buf_str(&b), "AUTH PLAIN ppp", 14) == 0);
	T_CHECK(b.data[b.len - 1] == 'p' && b.data[b.len] == '\0');
	/* printf, short and long (the scratch copies are wiped) */
	buf_reset(&b);
	buf_printf(&b, "a%u LOGIN %s", 7u, "pw");
	T_EQ_STR(buf_str(&b), "a7 LOGIN pw");
	buf_reset(&b);
	buf_printf(&b, "%s!", big);
	T_EQ_INT(b.len, 1000);
	T_CHECK(b.data[999] == '!');
	/* reset wipes the bytes it leaves in the block */
	cap = b.cap;
	buf_reset(&b);
	T_EQ_INT(b.len, 0);
	T_EQ_INT(b.cap, cap);
	T_CHECK(all_zero(b.data, 1001));
	/* free keeps the mode for the next use of the same struct */
	buf_append_str(&b, "s3cret");
	buf_free(&b);
	T_CHECK(b.data == NULL);
	T_EQ_INT(b.secret, 1);
	buf_append_str(&b, "again");
	T_EQ_STR(buf_str(&b), "again");
	buf_free(&b);
	/* buf_init starts a plain buffer */
	buf_init(&b, 16);
	T_EQ_INT(b.secret, 0);
	buf_free(&b);
}

int
main(void)
{
	test_plain();
	test_secret();
	return t_done();
}
