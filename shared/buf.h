/*
 * buf - growable byte buffer with a mandatory size cap (after curl's dynbuf).
 *
 * The data is always NUL-terminated, so it can be used as a C string when it
 * holds text.  Every append that would take the length past the cap appends
 * as much as fits, sets the `truncated` flag and returns -1: callers that
 * only inspect a prefix (body scanning) can ignore the error, callers that
 * need the whole thing treat it as failure.  Memory exhaustion is fatal
 * (see xalloc.h).
 */
#ifndef HG_BUF_H
#define HG_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char   *data;		/* NUL-terminated; NULL until first append */
	size_t  len;		/* bytes used, excluding the NUL */
	size_t  cap;		/* bytes allocated */
	size_t  max;		/* hard cap on len */
	int     truncated;	/* an append was cut short by max */
	int     secret;		/* wipe every byte left behind (buf_init_secret) */
};

void	buf_init(struct buf *b, size_t max);
/* The same for a buffer that will hold a secret (a password, its base64):
 * no copy is left behind in freed memory.  Growing wipes the old block,
 * buf_reset and buf_free wipe the data, and buf_printf wipes its scratch
 * space.  buf_steal hands the secret over: the caller wipes it. */
void	buf_init_secret(struct buf *b, size_t max);
int	buf_append(struct buf *b, const void *data, size_t len);
int	buf_append_str(struct buf *b, const char *s);
int	buf_append_char(struct buf *b, char c);
int	buf_printf(struct buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Returns the data ("" when empty); the buffer stays valid. */
const char *buf_str(const struct buf *b);
/* Hands the data to the caller (xmalloc'd, never NULL) and resets b. */
char   *buf_steal(struct buf *b);
void	buf_reset(struct buf *b);
void	buf_free(struct buf *b);

#endif
