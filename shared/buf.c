#include "buf.h"

#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "xalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->truncated = 0;
	b->secret = 0;
}

void
buf_init_secret(struct buf *b, size_t max)
{
	buf_init(b, max);
	b->secret = 1;
}

static void
buf_reserve(struct buf *b, size_t need)
{
	size_t cap;

	if (need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (b->secret && b->data != NULL) {
		/* realloc would free the old block as it is */
		char *data = xmalloc(cap);

		memcpy(data, b->data, b->len + 1);
		explicit_bzero(b->data, b->cap);
		free(b->data);
		b->data = data;
	} else {
		b->data = xrealloc(b->data, cap);
	}
	b->cap = cap;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	int rc = 0;

	if (len > b->max - b->len) {
		len = b->max - b->len;
		b->truncated = 1;
		rc = -1;
	}
	buf_reserve(b, b->len + len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return rc;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_append_char(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	int n;
	int rc;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small)) {
		rc = buf_append(b, small, (size_t)n);
		if (b->secret)
			explicit_bzero(small, sizeof(small));
		return rc;
	}
	if (b->secret)
		explicit_bzero(small, sizeof(small));

	char *big = xmalloc((size_t)n + 1);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	rc = buf_append(b, big, (size_t)n);
	if (b->secret)
		explicit_bzero(big, (size_t)n + 1);
	free(big);
	return rc;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	b->truncated = 0;
	return p;
}

void
buf_reset(struct buf *b)
{
	if (b->secret && b->data)
		explicit_bzero(b->data, b->len);
	b->len = 0;
	b->truncated = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	int secret = b->secret;

	if (secret && b->data)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	buf_init(b, b->max);
	b->secret = secret;
}
