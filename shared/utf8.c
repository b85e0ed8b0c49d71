/*
 * utf8 - see utf8.h.
 */
#include <string.h>

#include "utf8.h"

/* Latin letters with diacritics -> base letter, for the second spelling of
 * a phrase; '.' = leave alone. */
static const char strip_e0[] = "aaaaaa.ceeeeiiii.nooooo.ouuuuy.y";
static const char strip_100[] =
    "aaaaaaccccccccdd" "ddeeeeeeeeeegggg" "gggghhhhiiiiiiii" "ii..jjkkklllllll"
    "lllnnnnnnnnnoooo" "oo..rrrrrrssssss" "ssttttttuuuuuuuu" "uuuuwwyyyzzzzzzs";

/* Writes the phrase without Latin diacritics to out (>= len bytes); returns
 * its length. */
size_t
utf8_strip_latin(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	size_t o = 0;

	while (p < end) {
		uint32_t cp = 0;
		size_t n = utf8_decode(p, end, &cp);
		char base = '.';

		if (n == 0)
			n = 1;
		if (cp >= 0xe0 && cp <= 0xff)
			base = strip_e0[cp - 0xe0];
		else if (cp >= 0x100 && cp <= 0x17f)
			base = strip_100[cp - 0x100];
		if (n == 2 && base != '.')
			out[o++] = base;
		else {
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	return o;
}
