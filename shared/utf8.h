/*
 * utf8 - the two UTF-8 helpers the text scanners share: strict decoding of
 * one character, and Latin letters without their diacritics.
 */
#ifndef HG_UTF8_H
#define HG_UTF8_H

#include <stddef.h>
#include <stdint.h>

static inline int
utf8_is_cont(unsigned char b)
{
	return (b & 0xc0) == 0x80;
}

/* Length of the valid UTF-8 sequence at p (< end), 0 if invalid; *cp gets
 * the code point. */
static inline size_t
utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	unsigned c = p[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf && end - p >= 2 && utf8_is_cont(p[1])) {
		*cp = (uint32_t)(c & 0x1f) << 6 | (p[1] & 0x3f);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef && end - p >= 3 && utf8_is_cont(p[1]) && utf8_is_cont(p[2])) {
		uint32_t v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);

		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		*cp = v;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4 && end - p >= 4 && utf8_is_cont(p[1]) && utf8_is_cont(p[2]) &&
	    utf8_is_cont(p[3])) {
		uint32_t v = (uint32_t)(c & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
		    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);

		if (v < 0x10000 || v > 0x10ffff)
			return 0;
		*cp = v;
		return 4;
	}
	return 0;
}

/* Writes in without Latin diacritics (lower-case U+00E0..U+017F become
 * their base letter: "wysłać" -> "wyslac") to out, which holds at least
 * len bytes; everything else is copied.  Returns the length written. */
size_t	utf8_strip_latin(const char *in, size_t len, char *out);

#endif
