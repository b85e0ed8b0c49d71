/*
 * msg - untrusted RFC 5322/MIME message to decoded UTF-8 (see msg.h).
 *
 * Structure.  The MIME walk is our own, not libetpan's mailmime_parse():
 * libetpan 1.9.4 overflows the heap on Content-Type: multipart/x;
 * boundary="\"" (mailmime_extract_boundary() strncpy()s len - 2 bytes,
 * i.e. SIZE_MAX, for a one-character quoted value) and rescans the body
 * once per nesting level with unbounded recursion (3000 nested multiparts
 * in 160 KB: 0.4 s, growing quadratically).  The walk here
 * scans each multipart body once with memchr(), stops at MSG_MAX_DEPTH
 * levels (cost <= depth x input) and MSG_MAX_PARTS parts, treats a missing
 * closing boundary as the end of the input (the caller's scan limit cuts
 * messages short) and never fails.  libetpan parses the From field
 * (mailimf_mailbox_list_parse), whose grammar is the hairy part of RFC
 * 5322; our own fallback takes over when it rejects a field.
 *
 * Decoding.  Quoted-printable, base64 and RFC 2047 are decoded here rather
 * than by libetpan: its QP decoder turns a stray "=" followed by non-hex
 * characters into arbitrary bytes (even NUL) and rewrites LF to CRLF,
 * neither decoder can stop at an output cap, and the encoded-word rules
 * below (unknown charsets, malformed words, one character's bytes split
 * over two words, MSG_UNKNOWN_CHARSET) need more control than
 * mailmime_encoded_phrase_parse() gives.  Charsets go through iconv
 * (glibc), restricted to the families real mail uses; every conversion
 * turns invalid input into U+FFFD and makes progress on every byte.
 * Converters stay open for the whole call (struct dec): glibc unloads a
 * converter module soon after its last user closes, so opening one per
 * change of charset cost a module load each time (20k encoded-words in 18
 * charsets: 1.1 s and 21k file opens).
 *
 * Cost.  Everything is linear in the input: header values are unfolded
 * once, encoded-word scanning never rescans a failed stretch, the chosen
 * text part is decoded only up to a multiple of max_text, and the final
 * clean-up pass skips plain ASCII eight bytes at a time.  Per message at
 * most MSG_MAX_ENCODED_WORDS words are decoded, MSG_MAX_PARTS entities
 * walked and MSG_MAX_CHARSETS converters opened.
 *
 * Thread-safety: no global state apart from libxml2's one-time
 * initialisation (html_text.c).
 */
#include "msg.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "buf.h"
#include "html_text.h"
#include "xalloc.h"

#define MSG_MAX_VALUE		(64 * 1024)	/* header value, bytes */
#define MSG_MAX_REFERENCES	256
#define MSG_MAX_ID		998		/* one msg-id, bytes */
#define MSG_MAX_ADDR		998
#define MSG_MAX_BOUNDARY	200		/* RFC 2046 says 70 */
#define MSG_FROM_LIBETPAN_MAX	4096		/* longer From fields skip libetpan */
#define MSG_CHARSET_MAX		48
#define MSG_TYPE_MAX		128
#define MSG_HTML_SRC_MIN	(1024 * 1024)	/* HTML read at least this far */

/* Output cleaning modes for utf8_clean(). */
#define CLEAN_NL	0x01	/* CRLF and lone CR -> LF (body text) */
#define CLEAN_CTL	0x02	/* CR and LF -> space (header values) */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

enum cs_kind {
	CS_UTF8,	/* UTF-8 */
	CS_GUESS,	/* no usable label (us-ascii, none): UTF-8 if valid, else guess */
	CS_UNKNOWN,	/* a label we do not know: like CS_GUESS, flagged */
	CS_ICONV	/* convert with iconv from the returned name */
};

/* One converter kept open: name is the iconv name (charset_lookup()). */
struct conv_slot {
	char		name[MSG_CHARSET_MAX];
	iconv_t		cd;		/* (iconv_t)-1: iconv does not know name */
};

/*
 * What one msg_parse() (or msg_decode_header_value(), ...) call decodes
 * with: its flags, the converters it opened and the work it may still do.
 * Opening a converter costs a module load when no other converter holds
 * the module (60 us, two file opens), so each charset's converter is
 * opened once and stays open until the call ends, for at most
 * MSG_MAX_CHARSETS charsets (mail uses two or three); a charset past those
 * is treated as one iconv does not know.  Each cap reached sets
 * MSG_TRUNCATED.
 */
struct dec {
	unsigned       *flags;
	struct conv_slot conv[MSG_MAX_CHARSETS];
	size_t		nconv;
	size_t		words_left;	/* encoded-words still decoded */
	size_t		parts_left;	/* MIME entities still walked */
};

static void
dec_init(struct dec *dx, unsigned *flags)
{
	memset(dx, 0, sizeof(*dx));
	dx->flags = flags;
	dx->words_left = MSG_MAX_ENCODED_WORDS;
	dx->parts_left = MSG_MAX_PARTS;
}

static void
dec_free(struct dec *dx)
{
	size_t i;

	for (i = 0; i < dx->nconv; i++)
		if (dx->conv[i].cd != (iconv_t)-1)
			iconv_close(dx->conv[i].cd);
	dx->nconv = 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
a_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t
sat_mul(size_t a, size_t b)
{
	return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static size_t
sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static int
span_eq_ci(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || a_lower((unsigned char)s[i]) != lit[i])
			return 0;
	return lit[n] == '\0';
}

static void
trim_span(const char **s, size_t *n)
{
	while (*n > 0 && is_space((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* Finds "=?" in s[0..n); the header fast path. */
static int
has_encoded_word_start(const char *s, size_t n)
{
	const char *p = s, *end = s + n;

	while (p < end && (p = memchr(p, '=', (size_t)(end - p))) != NULL) {
		if (p + 1 < end && p[1] == '?')
			return 1;
		p++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                                */

/* Length (1-4) of the valid UTF-8 sequence at s, 0 when invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;	/* overlong */
		if (c == 0xed && s[1] > 0x9f)
			return 0;	/* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;	/* overlong */
		if (c == 0xf4 && s[1] > 0x8f)
			return 0;	/* > U+10FFFF */
		return 4;
	}
	return 0;
}

#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

/* Bytes at the start of s that need no attention: ASCII other than NUL and
 * CR (and LF when lf is set).  Eight at a time while possible. */
static size_t
plain_run(const unsigned char *s, size_t n, int lf)
{
	size_t i = 0;
	uint64_t v, x, y, z;

	while (i + 8 <= n) {
		memcpy(&v, s + i, 8);
		x = v ^ (ONES * '\r');
		y = v ^ (ONES * '\n');
		z = (v & HIGHS) | ((v - ONES) & ~v & HIGHS) |
		    ((x - ONES) & ~x & HIGHS);
		if (lf)
			z |= (y - ONES) & ~y & HIGHS;
		if (z)
			break;
		i += 8;
	}
	while (i < n && s[i] < 0x80 && s[i] != 0 && s[i] != '\r' &&
	    (!lf || s[i] != '\n'))
		i++;
	return i;
}

/* Counts valid multi-byte sequences and invalid bytes in s[0..n). */
static void
utf8_stats(const unsigned char *s, size_t n, size_t *multi, size_t *bad)
{
	size_t i = 0, k;

	*multi = *bad = 0;
	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = utf8_seq(s + i, n - i);
		if (k == 0) {
			(*bad)++;
			i++;
		} else {
			(*multi)++;
			i += k;
		}
	}
}

/* Bytes at the start of s[0..n) that are valid UTF-8 and need no
 * attention in utf8_clean(): NUL, CR (and LF with lf) stop the run. */
static size_t
good_run(const unsigned char *s, size_t n, int lf)
{
	size_t i = 0, k;
	unsigned c;

	while (i < n) {
		c = s[i];
		if (c < 0x80) {
			if (c == 0 || c == '\r' || (lf && c == '\n'))
				break;
			i++;
			if (i < n && s[i] < 0x80)
				i += plain_run(s + i, n - i, lf);
		} else if (c >= 0xc2 && c <= 0xdf && i + 1 < n &&
		    (s[i + 1] & 0xc0) == 0x80)
			i += 2;		/* the common case: Cyrillic, Latin */
		else if ((k = utf8_seq(s + i, n - i)) != 0)
			i += k;
		else
			break;
	}
	return i;
}

static int
utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while ((i += good_run(s + i, n - i, 0)) < n) {
		if (s[i] >= 0x80)
			return 0;
		i++;	/* NUL or CR: valid UTF-8 */
	}
	return 1;
}

static const char utf8_replacement[] = "\xef\xbf\xbd";	/* U+FFFD */

/*
 * Appends s[0..n) to out as valid UTF-8: invalid bytes become U+FFFD, NUL
 * becomes a space, and per mode CR/CRLF become LF or CR/LF become spaces.
 * Never splits a character at out's cap.  Returns -1 when it stopped at
 * the cap (out->truncated is then set), 0 otherwise.
 */
static int
utf8_clean(struct buf *out, const char *str, size_t n, int mode)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run, cut, room;
	unsigned char c;

	while (i < n) {
		run = good_run(s + i, n - i, (mode & CLEAN_CTL) != 0);
		if (run > 0) {
			room = out->max - out->len;
			if (run > room) {
				/* Cut before the character that does not fit. */
				for (cut = room; cut > 0 && (s[i + cut] & 0xc0) == 0x80; cut--)
					;
				buf_append(out, s + i, cut);
				out->truncated = 1;
				return -1;
			}
			buf_append(out, s + i, run);
			if ((i += run) >= n)
				break;
		}
		c = s[i];
		if (c == 0 || ((mode & CLEAN_CTL) && (c == '\r' || c == '\n'))) {
			if (buf_append_char(out, ' ') < 0)
				return -1;
			i++;
		} else if (c == '\r') {
			if (buf_append_char(out, (mode & CLEAN_NL) ? '\n' : '\r') < 0)
				return -1;
			i += ((mode & CLEAN_NL) && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
		} else {
			if (out->max - out->len < 3) {
				out->truncated = 1;
				return -1;
			}
			buf_append(out, utf8_replacement, 3);
			i++;
		}
	}
	return 0;
}

/*
 * struct buf grows by doubling from 64 bytes; when the final size is known
 * roughly, one allocation up front saves the reallocs, their copies and
 * (past 128 KiB) an mmap per step.  Uses only the fields buf.h documents;
 * buf_reserve() keeps working from there.
 */
static void
presize(struct buf *b, size_t want)
{
	if (b->data != NULL || want == 0)
		return;
	if (want > b->max)
		want = b->max;
	b->data = xmalloc(want + 1);
	b->cap = want + 1;
	b->data[0] = '\0';
}

/* Strips white space from both ends of b (after cleaning, since NUL, CR
 * and LF turn into spaces there). */
static void
trim_buf(struct buf *b)
{
	size_t st = 0;

	while (b->len > 0 && is_space((unsigned char)b->data[b->len - 1]))
		b->data[--b->len] = '\0';
	while (st < b->len && is_space((unsigned char)b->data[st]))
		st++;
	if (st > 0) {
		memmove(b->data, b->data + st, b->len - st + 1);
		b->len -= st;
	}
}

/* A clean, trimmed, NUL-terminated copy (CR/LF become spaces). */
static char *
clean_dup(const char *s, size_t n, size_t max, int *truncated)
{
	struct buf b;

	buf_init(&b, max);
	if (utf8_clean(&b, s, n, CLEAN_CTL) < 0 && truncated != NULL)
		*truncated = 1;
	trim_buf(&b);
	return buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* Charsets                                                             */

static const struct {
	const char	*label;
	const char	*name;	/* NULL: CS_GUESS; "" : CS_UNKNOWN; "UTF-8": CS_UTF8 */
} cs_aliases[] = {
	{ "utf-8", "UTF-8" }, { "utf8", "UTF-8" }, { "x-utf8", "UTF-8" },
	{ "unicode-1-1-utf-8", "UTF-8" }, { "unicode-2-0-utf-8", "UTF-8" },
	{ "us-ascii", NULL }, { "ascii", NULL }, { "us", NULL },
	{ "ansi_x3.4-1968", NULL }, { "iso646-us", NULL }, { "646", NULL },
	{ "none", NULL }, { "default", NULL },
	{ "x-unknown", "" }, { "unknown", "" }, { "unknown-8bit", "" },
	{ "x-user-defined", "" }, { "charset", "" }, { "8bit", "" },
	{ "7bit", "" }, { "binary", "" }, { "_iso-2022-jp$esc", "" },
	/* WHATWG: labels for Latin-1 mean windows-1252 in practice. */
	{ "iso-8859-1", "WINDOWS-1252" }, { "iso8859-1", "WINDOWS-1252" },
	{ "iso_8859-1", "WINDOWS-1252" }, { "latin1", "WINDOWS-1252" },
	{ "latin-1", "WINDOWS-1252" }, { "l1", "WINDOWS-1252" },
	{ "cp819", "WINDOWS-1252" }, { "ibm819", "WINDOWS-1252" },
	{ "iso-ir-100", "WINDOWS-1252" }, { "iso_8859-1:1987", "WINDOWS-1252" },
	{ "ks_c_5601-1987", "CP949" }, { "ks_c_5601-1989", "CP949" },
	{ "ks_c_5601", "CP949" }, { "ksc5601", "CP949" }, { "ksc_5601", "CP949" },
	{ "euc-kr", "CP949" }, { "windows-949", "CP949" }, { "x-windows-949", "CP949" },
	{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" },
	{ "gb_2312-80", "GB18030" }, { "csgb2312", "GB18030" }, { "euc-cn", "GB18030" },
	{ "x-euc-cn", "GB18030" }, { "chinese", "GB18030" }, { "cp936", "GB18030" },
	{ "big5", "BIG5-HKSCS" }, { "x-x-big5", "BIG5-HKSCS" }, { "big5-hkscs", "BIG5-HKSCS" },
	{ "shift_jis", "CP932" }, { "shift-jis", "CP932" }, { "x-sjis", "CP932" },
	{ "sjis", "CP932" }, { "ms_kanji", "CP932" }, { "windows-31j", "CP932" },
	{ "csshiftjis", "CP932" }, { "cp932", "CP932" },
	{ "utf-7", "UTF-7" }, { "unicode-1-1-utf-7", "UTF-7" }, { "x-utf-7", "UTF-7" },
	{ "koi8-r", "KOI8-R" }, { "koi8r", "KOI8-R" }, { "cskoi8r", "KOI8-R" },
	{ "koi", "KOI8-R" }, { "koi8", "KOI8-R" }, { "koi8-u", "KOI8-U" },
	{ "koi8u", "KOI8-U" }, { "koi8-ru", "KOI8-RU" },
	{ "x-mac-cyrillic", "MAC-CYRILLIC" }, { "mac-cyrillic", "MAC-CYRILLIC" },
	{ "x-mac-ukrainian", "MACUKRAINIAN" }, { "x-mac-roman", "MACINTOSH" },
	{ "macintosh", "MACINTOSH" }, { "mac", "MACINTOSH" },
	{ "ibm866", "CP866" }, { "cp866", "CP866" }, { "866", "CP866" },
	{ "csibm866", "CP866" }, { "x-cp866", "CP866" },
	{ "tis-620", "CP874" }, { "windows-874", "CP874" }, { "iso-8859-11", "CP874" },
	{ "ucs-2", "UCS-2BE" }, { "unicode", "UTF-16" },
};

/* Label prefixes handed to iconv as they are (uppercased).  Anything else
 * is unknown: the allow-list keeps exotic converters (EBCDIC, ...) with a
 * history of bugs on invalid input away from untrusted bytes. */
static const char *const cs_families[] = {
	"iso-8859-", "iso8859-", "iso_8859-", "iso-2022-", "windows-125",
	"cp125", "utf-16", "utf-32", "ucs-4", "euc-", "gb18030", "latin",
	"viscii", "tcvn", "armscii", "georgian-", "hz-gb-2312", "big5",
	"mac", "cp437", "cp850", "cp852", "cp855", "cp857", "cp860", "cp862",
	"cp865", "cp869", "iso-ir-", "pt154", "kz-1048", "cp1125",
};

/*
 * Classifies a charset label (as found in a parameter or encoded-word) and,
 * for CS_ICONV and CS_UTF8, writes the iconv name into name.  Accepts
 * surrounding quotes and white space and an RFC 2231 "*language" suffix.
 */
static enum cs_kind
charset_lookup(const char *label, size_t n, char *name, size_t namesz)
{
	char low[MSG_CHARSET_MAX];
	size_t i, k, len;
	const char *p;

	trim_span(&label, &n);
	while (n > 0 && (*label == '"' || *label == '\'')) {
		label++;
		n--;
	}
	while (n > 0 && (label[n - 1] == '"' || label[n - 1] == '\''))
		n--;
	if ((p = memchr(label, '*', n)) != NULL)
		n = (size_t)(p - label);
	trim_span(&label, &n);
	if (n == 0)
		return CS_GUESS;
	if (n >= sizeof(low))
		return CS_UNKNOWN;
	for (i = 0; i < n; i++) {
		int c = a_lower((unsigned char)label[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == ':' || c == '+' ||
		    c == '$'))
			return CS_UNKNOWN;
		low[i] = (char)c;
	}
	low[n] = '\0';
	for (i = 0; i < sizeof(cs_aliases) / sizeof(cs_aliases[0]); i++) {
		if (strcmp(low, cs_aliases[i].label) != 0)
			continue;
		if (cs_aliases[i].name == NULL)
			return CS_GUESS;
		if (cs_aliases[i].name[0] == '\0')
			return CS_UNKNOWN;
		snprintf(name, namesz, "%s", cs_aliases[i].name);
		return strcmp(name, "UTF-8") == 0 ? CS_UTF8 : CS_ICONV;
	}
	/* "win-1251", "win1251", "windows1251", "x-cp1251", "cp-1251" */
	for (k = 0; k < 2; k++) {
		static const char *const pre[] = { "win", "x-cp" };
		size_t pl = strlen(pre[k]);

		if (strncmp(low, pre[k], pl) == 0) {
			p = low + pl;
			if (*p == '-' || *p == '_')
				p++;
			else if (k == 0 && strncmp(p, "dows", 4) == 0)
				p += 4;
			if (strlen(p) == 4 && strncmp(p, "125", 3) == 0 &&
			    p[3] >= '0' && p[3] <= '8') {
				snprintf(name, namesz, "CP%s", p);
				return CS_ICONV;
			}
		}
	}
	if (strncmp(low, "cp-", 3) == 0 && strlen(low) <= 8) {
		snprintf(name, namesz, "CP%s", low + 3);
		return CS_ICONV;
	}
	for (i = 0; i < sizeof(cs_families) / sizeof(cs_families[0]); i++) {
		len = strlen(cs_families[i]);
		if (strncmp(low, cs_families[i], len) == 0) {
			for (k = 0; k < n && k + 1 < namesz; k++)
				name[k] = (low[k] >= 'a' && low[k] <= 'z') ?
				    (char)(low[k] - ('a' - 'A')) : low[k];
			name[k] = '\0';
			return CS_ICONV;
		}
	}
	return CS_UNKNOWN;
}

/* UTF-16 and UTF-32 converters learn the byte order from the first
 * conversion's byte order mark and keep it: those are used fresh each
 * time (cheap while the cached one keeps the module loaded). */
static int
conv_once(const char *name)
{
	return strncmp(name, "UTF-16", 6) == 0 || strncmp(name, "UTF-32", 6) == 0 ||
	    strncmp(name, "UCS-", 4) == 0 || strcmp(name, "UNICODE") == 0;
}

/* A converter from name to UTF-8 in its initial state, (iconv_t)-1 when
 * iconv does not know name or the call has opened converters for
 * MSG_MAX_CHARSETS others already.  *fresh: the caller closes it after use. */
static iconv_t
conv_get(struct dec *dx, const char *name, int *fresh)
{
	struct conv_slot *sl = NULL;
	size_t i;

	*fresh = 0;
	for (i = 0; i < dx->nconv; i++)
		if (strcmp(dx->conv[i].name, name) == 0) {
			sl = &dx->conv[i];
			break;
		}
	if (sl == NULL) {
		if (dx->nconv == MSG_MAX_CHARSETS || strlen(name) >= sizeof(sl->name)) {
			*dx->flags |= MSG_TRUNCATED;
			return (iconv_t)-1;
		}
		sl = &dx->conv[dx->nconv++];
		snprintf(sl->name, sizeof(sl->name), "%s", name);
		sl->cd = iconv_open("UTF-8", name);
	}
	if (sl->cd == (iconv_t)-1)
		return sl->cd;
	if (conv_once(name)) {
		*fresh = 1;
		return iconv_open("UTF-8", name);
	}
	iconv(sl->cd, NULL, NULL, NULL, NULL);	/* back to the initial state */
	return sl->cd;
}

/*
 * Converts in[0..len) from the iconv charset name into out (capped).
 * Invalid or incomplete input becomes U+FFFD, one per bad byte, so every
 * call makes progress.  Returns -1 when iconv does not know the name (or
 * the call converts no more charsets).
 */
static int
conv_iconv(struct dec *dx, const char *name, const char *in, size_t len, struct buf *out)
{
	char chunk[2048];
	iconv_t cd;
	char *ip = (char *)(uintptr_t)in, *op;
	size_t il = len, ol, r;
	int stop = 0, fresh;

	if ((cd = conv_get(dx, name, &fresh)) == (iconv_t)-1)
		return -1;
	while (!stop && !out->truncated) {
		op = chunk;
		ol = sizeof(chunk);
		if (il > 0)
			r = iconv(cd, &ip, &il, &op, &ol);
		else {
			r = iconv(cd, NULL, NULL, &op, &ol);	/* flush shift state */
			stop = 1;
		}
		if (op > chunk)
			buf_append(out, chunk, (size_t)(op - chunk));
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (stop)
			break;
		/* EILSEQ: skip one byte; EINVAL: the input ends mid-character. */
		buf_append(out, utf8_replacement, 3);
		if (errno == EINVAL) {
			il = 0;
		} else {
			ip++;
			il--;
		}
	}
	if (fresh)
		iconv_close(cd);
	return 0;
}

/*
 * The charset of 8-bit text that came without a usable label and is not
 * UTF-8.  Text where most letters are bytes 0xC0-0xFF is Cyrillic (Western
 * text has a few accented letters among ASCII ones); then the case layout
 * decides: lowercase letters are 0xE0-0xFF in windows-1251 but 0xC0-0xDF
 * in KOI8, and running text is mostly lowercase.  KOI8-U decodes Russian
 * like KOI8-R and Ukrainian correctly.
 */
static const char *
guess_8bit(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i, letters = 0, hi = 0, lo = 0;

	if (n > 65536)
		n = 65536;
	for (i = 0; i < n; i++) {
		if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')
			letters++;
		else if (s[i] >= 0xc0) {
			hi++;
			if (s[i] >= 0xe0)
				lo++;
		}
	}
	if (hi >= 2 && hi * 10 > (letters + hi) * 4)
		return lo * 2 >= hi ? "CP1251" : "KOI8-U";
	return "CP1252";
}

/* Text that is UTF-8 "enough": every byte valid, or more valid multi-byte
 * sequences than invalid bytes (UTF-8 with a few stray bytes, not a
 * mislabelled 8-bit charset). */
static int
mostly_utf8(const char *s, size_t n)
{
	size_t multi, bad;

	if (utf8_valid(s, n))
		return 1;
	utf8_stats((const unsigned char *)s, n, &multi, &bad);
	return multi >= bad;
}

/*
 * Converts text in the labelled charset to UTF-8, appending to out.  When
 * the result can be the input itself (valid UTF-8 under a UTF-8 or absent
 * label) nothing is copied: *direct is set and out is untouched.
 */
static void
to_utf8(struct dec *dx, const char *label, size_t label_len, const char *in, size_t len,
    struct buf *out, int *direct)
{
	char name[MSG_CHARSET_MAX];
	enum cs_kind kind;

	*direct = 0;
	kind = charset_lookup(label, label_len, name, sizeof(name));
	if (kind == CS_ICONV) {
		if (conv_iconv(dx, name, in, len, out) == 0)
			return;
		kind = CS_UNKNOWN;
	}
	if (kind == CS_UNKNOWN)
		*dx->flags |= MSG_UNKNOWN_CHARSET;
	/* Labelled UTF-8, no label or an unknown one: UTF-8 (stray bytes
	 * become U+FFFD in the final pass) unless it plainly is not. */
	if (mostly_utf8(in, len)) {
		*direct = 1;
		return;
	}
	if (conv_iconv(dx, guess_8bit(in, len), in, len, out) < 0)
		*direct = 1;
}

char *
msg_charset_to_utf8(const char *charset, const char *in, size_t len,
    size_t *outlen)
{
	char name[MSG_CHARSET_MAX];
	struct buf raw, b;
	struct dec dx;
	enum cs_kind kind;
	size_t n;
	unsigned flags = 0;
	int r = 0;

	if (in == NULL)
		len = 0;
	kind = charset_lookup(charset ? charset : "", charset ? strlen(charset) : 0,
	    name, sizeof(name));
	if (kind == CS_UNKNOWN)
		return NULL;
	buf_init(&raw, SIZE_MAX / 2);
	dec_init(&dx, &flags);
	if (kind == CS_ICONV)
		r = conv_iconv(&dx, name, in ? in : "", len, &raw);
	else if (kind == CS_GUESS && !mostly_utf8(in, len))
		r = conv_iconv(&dx, guess_8bit(in, len), in, len, &raw);
	else
		buf_append(&raw, in ? in : "", len);
	dec_free(&dx);
	if (r < 0) {
		buf_free(&raw);
		return NULL;
	}
	buf_init(&b, SIZE_MAX / 2);
	utf8_clean(&b, buf_str(&raw), raw.len, 0);
	buf_free(&raw);
	n = b.len;
	if (outlen != NULL)
		*outlen = n;
	return buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* Transfer encodings                                                   */

static const signed char b64_tab[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};	/* value + 1; 0 = not in the alphabet */

/*
 * Decodes base64 into out (capped).  Lenient like every MUA: white space
 * is skipped, a '=' ends a quantum (so blocks padded line by line decode),
 * a trailing partial quantum yields its whole bytes.  A line holding bytes
 * outside the alphabet is not base64 (a list footer appended to a base64
 * part, a signature): in body mode it is skipped whole and counted; in
 * strict mode (encoded-words) decoding stops.  Returns the number of such
 * lines, 0 when the input was clean.
 */
static size_t
b64_decode(const char *str, size_t n, struct buf *out, int strict)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + n;
	const unsigned char *line, *le, *p;
	unsigned char q[4], o[3 * 256];
	size_t bad = 0, ol = 0;
	int qn = 0, v;

	for (line = s; line < end; line = le + 1) {
		le = memchr(line, '\n', (size_t)(end - line));
		if (le == NULL)
			le = end;
		for (p = line; p < le; p++)
			if (b64_tab[*p] == 0 && *p != '=' && !is_space(*p))
				break;
		if (p < le) {
			bad++;
			if (strict)
				return bad;
			continue;
		}
		for (p = line; p < le; p++) {
			/* Fast path: four alphabet characters at a quantum start. */
			while (qn == 0 && le - p >= 4 && ol + 3 <= sizeof(o) &&
			    b64_tab[p[0]] && b64_tab[p[1]] && b64_tab[p[2]] &&
			    b64_tab[p[3]]) {
				unsigned x = (unsigned)(b64_tab[p[0]] - 1) << 18 |
				    (unsigned)(b64_tab[p[1]] - 1) << 12 |
				    (unsigned)(b64_tab[p[2]] - 1) << 6 |
				    (unsigned)(b64_tab[p[3]] - 1);

				o[ol++] = (unsigned char)(x >> 16);
				o[ol++] = (unsigned char)(x >> 8);
				o[ol++] = (unsigned char)x;
				p += 4;
				if (ol + 3 > sizeof(o)) {
					if (buf_append(out, o, ol) < 0)
						return bad;
					ol = 0;
				}
			}
			if (p >= le)
				break;
			if ((v = b64_tab[*p]) == 0) {
				if (*p != '=')
					continue;
				if (qn >= 2)
					o[ol++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
				if (qn >= 3)
					o[ol++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
				qn = 0;
			} else {
				q[qn++] = (unsigned char)(v - 1);
				if (qn < 4)
					continue;
				o[ol++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
				o[ol++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
				o[ol++] = (unsigned char)(q[2] << 6 | q[3]);
				qn = 0;
			}
			if (ol + 3 > sizeof(o)) {
				if (buf_append(out, o, ol) < 0)
					return bad;
				ol = 0;
			}
		}
		if (le == end)
			break;
	}
	if (qn >= 2)
		o[ol++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
	if (qn >= 3)
		o[ol++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
	if (ol > 0)
		buf_append(out, o, ol);
	return bad;
}

/*
 * Decodes quoted-printable into out (capped).  "=XX" is a byte, "=" before
 * the line end (after optional white space) a soft break; any other "=" is
 * kept as is (Outlook and friends send unencoded "=" in QP bodies).  hdr:
 * RFC 2047 Q, where "_" is a space.
 */
static void
qp_decode(const char *str, size_t n, struct buf *out, int hdr)
{
	const char *s = str, *end = str + n, *run, *p;
	char o[1024];
	size_t ol = 0, rl;
	int h1, h2;

#define QP_FLUSH() do {							\
	if (ol > 0 && buf_append(out, o, ol) < 0)			\
		return;							\
	ol = 0;								\
} while (0)
	while (s < end) {
		run = s;
		if (hdr)
			while (s < end && *s != '=' && *s != '_')
				s++;
		else if ((s = memchr(s, '=', (size_t)(end - s))) == NULL)
			s = end;
		if ((rl = (size_t)(s - run)) > 0) {
			if (ol + rl > sizeof(o))
				QP_FLUSH();
			if (rl > sizeof(o)) {
				if (buf_append(out, run, rl) < 0)
					return;
			} else {
				memcpy(o + ol, run, rl);
				ol += rl;
			}
		}
		if (s >= end)
			break;
		if (ol + 1 > sizeof(o))
			QP_FLUSH();
		if (*s == '_') {
			o[ol++] = ' ';
			s++;
			continue;
		}
		/* *s == '=' */
		if (s + 2 < end && (h1 = hex_val((unsigned char)s[1])) >= 0 &&
		    (h2 = hex_val((unsigned char)s[2])) >= 0) {
			o[ol++] = (char)(h1 << 4 | h2);
			s += 3;
			continue;
		}
		for (p = s + 1; p < end && is_wsp((unsigned char)*p); p++)
			;
		if (p >= end) {		/* "=" at the end of (cut) input */
			s = end;
			continue;
		}
		if (*p == '\n' || *p == '\r') {	/* soft line break */
			s = p + 1;
			if (*p == '\r' && s < end && *s == '\n')
				s++;
			continue;
		}
		o[ol++] = '=';
		s++;
	}
	QP_FLUSH();
#undef QP_FLUSH
}

/* ------------------------------------------------------------------ */
/* RFC 2047                                                             */

struct ew_dec {
	struct buf	*out;
	struct buf	 pend;		/* decoded bytes waiting for conversion */
	char		 pend_cs[MSG_CHARSET_MAX];
	size_t		 pend_cs_len;
	const char	*plain_cs;	/* 8-bit text outside words: NULL = UTF-8 */
	struct dec	*dx;
};

static void
ew_flush(struct ew_dec *d)
{
	int direct;

	if (d->pend.len == 0)
		return;
	to_utf8(d->dx, d->pend_cs, d->pend_cs_len, d->pend.data, d->pend.len, d->out,
	    &direct);
	if (direct)
		buf_append(d->out, d->pend.data, d->pend.len);
	buf_reset(&d->pend);
}

static void
ew_plain(struct ew_dec *d, const char *s, size_t n)
{
	if (n == 0)
		return;
	ew_flush(d);
	if (d->plain_cs == NULL || conv_iconv(d->dx, d->plain_cs, s, n, d->out) < 0)
		buf_append(d->out, s, n);
}

/*
 * Tries to parse an encoded-word "=?charset?X?text?=" at s[i].  On success
 * fills the spans and returns the index just past "?=".  The encoded text
 * may not contain white space; a search that hits white space (or the end)
 * records where, so later "=?" inside the same stretch are not rescanned.
 */
static size_t
ew_parse(const char *s, size_t n, size_t i, const char **cs, size_t *cslen,
    int *enc, const char **text, size_t *textlen, size_t *fail_from,
    size_t *fail_until)
{
	size_t j = i + 2, t;
	int e;

	while (j < n && j - (i + 2) < MSG_CHARSET_MAX && s[j] != '?' &&
	    (unsigned char)s[j] > ' ' && (unsigned char)s[j] < 0x7f)
		j++;
	if (j >= n || s[j] != '?' || j == i + 2)
		return 0;
	*cs = s + i + 2;
	*cslen = j - (i + 2);
	j++;
	if (j + 1 >= n)
		return 0;
	e = a_lower((unsigned char)s[j]);
	if ((e != 'b' && e != 'q') || s[j + 1] != '?')
		return 0;
	*enc = e;
	t = j + 2;
	for (j = t; j + 1 < n; j++) {
		if (s[j] == '?' && s[j + 1] == '=')
			break;
		if (is_space((unsigned char)s[j]))
			break;
	}
	if (j + 1 >= n || s[j] != '?') {
		*fail_from = t;
		*fail_until = j + 1 >= n ? n : j;
		return 0;
	}
	*text = s + t;
	*textlen = j - t;
	return j + 2;
}

static int
all_space(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_space((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * Decodes the encoded-words in s[0..n) into out.  White space between two
 * adjacent encoded-words is dropped (RFC 2047 6.2) and their bytes are
 * joined before charset conversion, so a character split across two words
 * by a careless encoder survives.  Malformed words stay as they are.  A
 * word in an unknown charset is kept decoded when its bytes are valid
 * UTF-8, else left encoded; MSG_UNKNOWN_CHARSET is set either way.  Text
 * outside words that is 8-bit and not UTF-8 is decoded by guess_8bit().
 * Once the call has decoded MSG_MAX_ENCODED_WORDS words, the rest of the
 * value is left as it is (MSG_TRUNCATED).
 */
static void
hdr_decode(const char *s, size_t n, struct buf *out, struct dec *dx)
{
	struct ew_dec d;
	struct buf tmp;
	const char *cs, *text;
	size_t i = 0, seg = 0, end, cslen, textlen, fail_from = 0, fail_until = 0;
	char name[MSG_CHARSET_MAX];
	int enc, prev_ew = 0, ok;
	enum cs_kind kind;

	memset(&d, 0, sizeof(d));
	d.out = out;
	d.dx = dx;
	buf_init(&d.pend, MSG_MAX_VALUE);
	buf_init(&tmp, MSG_MAX_VALUE);
	if (!mostly_utf8(s, n))
		d.plain_cs = guess_8bit(s, n);
	while (i + 1 < n) {
		if (s[i] != '=' || s[i + 1] != '?' ||
		    (i >= fail_from && i < fail_until)) {
			i++;
			continue;
		}
		end = ew_parse(s, n, i, &cs, &cslen, &enc, &text, &textlen,
		    &fail_from, &fail_until);
		if (end == 0) {
			i++;
			continue;
		}
		if (dx->words_left == 0) {
			*dx->flags |= MSG_TRUNCATED;
			break;
		}
		dx->words_left--;
		buf_reset(&tmp);
		ok = 1;
		if (enc == 'b')
			ok = b64_decode(text, textlen, &tmp, 1) == 0;
		else
			qp_decode(text, textlen, &tmp, 1);
		kind = ok ? charset_lookup(cs, cslen, name, sizeof(name)) : CS_GUESS;
		if (ok && kind == CS_UNKNOWN) {
			*dx->flags |= MSG_UNKNOWN_CHARSET;
			if (utf8_valid(buf_str(&tmp), tmp.len)) {
				cs = "utf-8";
				cslen = 5;
			} else
				ok = 0;
		}
		if (!ok) {
			/* Left as it was, like plain text. */
			prev_ew = 0;
			i = end;
			continue;
		}
		if (!(prev_ew && all_space(s + seg, i - seg)))
			ew_plain(&d, s + seg, i - seg);
		if (d.pend.len > 0 && (cslen != d.pend_cs_len ||
		    strncasecmp(cs, d.pend_cs, cslen) != 0))
			ew_flush(&d);
		memcpy(d.pend_cs, cs, cslen);
		d.pend_cs_len = cslen;
		buf_append(&d.pend, buf_str(&tmp), tmp.len);
		seg = i = end;
		prev_ew = 1;
	}
	ew_plain(&d, s + seg, n - seg);
	ew_flush(&d);
	buf_free(&d.pend);
	buf_free(&tmp);
}

/* Decoded, cleaned, trimmed header value; caller frees. */
static char *
hdr_value_decode(const char *raw, size_t n, struct dec *dx)
{
	struct buf dec, b;
	const char *s;
	size_t len;
	int trunc = 0;

	buf_init(&dec, MSG_MAX_VALUE);
	hdr_decode(raw, n, &dec, dx);
	buf_init(&b, MSG_MAX_VALUE);
	s = buf_str(&dec);
	len = dec.len;
	if (utf8_clean(&b, s, len, CLEAN_CTL) < 0 || dec.truncated)
		trunc = 1;
	trim_buf(&b);
	buf_free(&dec);
	if (trunc)
		*dx->flags |= MSG_TRUNCATED;
	return buf_steal(&b);
}

char *
msg_decode_header_value(const char *raw)
{
	struct buf unf;
	struct dec dx;
	const char *p, *q, *end;
	unsigned flags = 0;
	char *r;

	if (raw == NULL)
		return xstrdup("");
	/* Unfold: drop CR and LF, keep the white space after them. */
	buf_init(&unf, MSG_MAX_VALUE);
	end = raw + strlen(raw);
	for (p = raw; p < end; p = q + 1) {
		for (q = p; q < end && *q != '\r' && *q != '\n'; q++)
			;
		buf_append(&unf, p, (size_t)(q - p));
		if (q >= end)
			break;
	}
	dec_init(&dx, &flags);
	r = hdr_value_decode(buf_str(&unf), unf.len, &dx);
	dec_free(&dx);
	buf_free(&unf);
	return r;
}

/* ------------------------------------------------------------------ */
/* RFC 2047 encoding                                                    */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
b64_encode(struct buf *out, const unsigned char *s, size_t n)
{
	char o[4];
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		o[0] = b64_chars[s[i] >> 2];
		o[1] = b64_chars[(s[i] & 3) << 4 | s[i + 1] >> 4];
		o[2] = b64_chars[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
		o[3] = b64_chars[s[i + 2] & 63];
		buf_append(out, o, 4);
	}
	if (n - i == 1) {
		o[0] = b64_chars[s[i] >> 2];
		o[1] = b64_chars[(s[i] & 3) << 4];
		o[2] = o[3] = '=';
		buf_append(out, o, 4);
	} else if (n - i == 2) {
		o[0] = b64_chars[s[i] >> 2];
		o[1] = b64_chars[(s[i] & 3) << 4 | s[i + 1] >> 4];
		o[2] = b64_chars[(s[i + 1] & 15) << 2];
		o[3] = '=';
		buf_append(out, o, 4);
	}
}

#define ENC_LINE	78	/* RFC 5322 recommended line length */
#define ENC_HARD	998	/* RFC 5322 hard limit */
#define EW_OVERHEAD	12	/* "=?UTF-8?B?" + "?=" */
#define EW_MAX		75	/* RFC 2047 encoded-word limit */

/* Plain ASCII folded at spaces; NULL if some line would pass ENC_HARD. */
static char *
fold_ascii(const char *s, size_t n, size_t used)
{
	struct buf out;
	size_t a = 0, b, col = used, line_chars = 0;

	buf_init(&out, SIZE_MAX / 2);
	while (a < n) {
		/* Segment: from a (maybe a space) to the next space. */
		for (b = a + 1; b < n && s[b] != ' '; b++)
			;
		if (line_chars > 0 && s[a] == ' ' && b - a > 1 &&
		    col + (b - a) > ENC_LINE) {
			buf_append_char(&out, '\n');
			col = 0;
		}
		buf_append(&out, s + a, b - a);
		col += b - a;
		line_chars += b - a;
		if (col > ENC_HARD) {
			buf_free(&out);
			return NULL;
		}
		a = b;
	}
	return buf_steal(&out);
}

char *
msg_encode_header_value(const char *utf8, size_t first_line_used)
{
	struct buf in, out;
	const unsigned char *s;
	size_t n, i, j, k, cap, used;
	int ascii = 1;
	char *r;

	buf_init(&in, SIZE_MAX / 2);
	if (utf8 != NULL)
		utf8_clean(&in, utf8, strlen(utf8), CLEAN_CTL);
	s = (const unsigned char *)buf_str(&in);
	n = in.len;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 ? s[i] != '\t' : s[i] > 0x7e)
			ascii = 0;
	if (ascii && !has_encoded_word_start((const char *)s, n) &&
	    (r = fold_ascii((const char *)s, n, first_line_used)) != NULL) {
		buf_free(&in);
		return r;
	}
	/* Whole characters per word, at most 45 bytes (60 base64 chars). */
	buf_init(&out, SIZE_MAX / 2);
	used = first_line_used;
	for (i = 0; i < n; i = j) {
		if (i > 0) {
			buf_append(&out, "\n ", 2);
			used = 1;
		}
		cap = (EW_MAX - EW_OVERHEAD) / 4 * 3;
		if (used + EW_MAX > ENC_LINE) {
			size_t room = used + EW_OVERHEAD < ENC_LINE ?
			    ENC_LINE - used - EW_OVERHEAD : 0;
			cap = room / 4 * 3;
		}
		for (j = i; j < n; j += k) {
			k = utf8_seq(s + j, n - j);
			if (k == 0)
				k = 1;	/* cannot happen after utf8_clean */
			if (j + k - i > cap && j > i)
				break;
		}
		buf_append_str(&out, "=?UTF-8?B?");
		b64_encode(&out, s + i, j - i);
		buf_append_str(&out, "?=");
	}
	buf_free(&in);
	return buf_steal(&out);
}

/* ------------------------------------------------------------------ */
/* Header blocks                                                        */

typedef void (*hdr_cb)(void *arg, const char *name, size_t nlen,
    const char *val, size_t vlen);

static const char *
line_next(const char *p, const char *end, const char **cend)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;

	if (e > p && e[-1] == '\r')
		e--;
	*cend = e;
	return nl ? nl + 1 : end;
}

/*
 * Walks the header block at p, calling cb with each field's name and raw
 * (still folded) value.  Returns where the body starts: after the blank
 * line, or at the first line that cannot be a header field (a body that
 * lacks the blank line; MSG_MALFORMED), or end.  top: the message's own
 * header, where a leading mbox "From " line is skipped.
 */
static const char *
hdr_block(const char *p, const char *end, int top, hdr_cb cb, void *arg,
    unsigned *flags)
{
	const char *cend, *next, *q, *name, *name_end, *val, *vend;
	int first = 1;

	while (p < end) {
		next = line_next(p, end, &cend);
		if (all_space(p, (size_t)(cend - p)))
			return next;
		if (first && top && cend - p > 5 && memcmp(p, "From ", 5) == 0 &&
		    p[5] != ' ' && p[5] != ':') {	/* not "From : x" */
			first = 0;
			p = next;
			continue;
		}
		first = 0;
		if (is_wsp((unsigned char)*p)) {
			/* Continuation with no field to continue. */
			*flags |= MSG_MALFORMED;
			p = next;
			continue;
		}
		name = p;
		for (q = p; q < cend && *q != ':' && (unsigned char)*q > ' ' &&
		    (unsigned char)*q < 0x7f; q++)
			;
		name_end = q;
		while (q < cend && is_wsp((unsigned char)*q))
			q++;
		if (q >= cend || *q != ':' || name_end == name) {
			*flags |= MSG_MALFORMED;
			return p;
		}
		val = q + 1;
		vend = cend;
		p = next;
		while (p < end && is_wsp((unsigned char)*p)) {
			next = line_next(p, end, &cend);
			if (all_space(p, (size_t)(cend - p)))
				break;	/* a blank-looking line ends the block */
			vend = cend;
			p = next;
		}
		cb(arg, name, (size_t)(name_end - name), val, (size_t)(vend - val));
	}
	return end;
}

/* ------------------------------------------------------------------ */
/* Content-Type, Content-Disposition, Content-Transfer-Encoding         */

struct part_info {
	char		type[MSG_TYPE_MAX];	/* lowercase "type/subtype" */
	char		charset[MSG_CHARSET_MAX];
	char		boundary[MSG_MAX_BOUNDARY + 1];
	size_t		blen;
	int		has_charset;
	int		has_boundary;
	int		boundary_bad;	/* empty or too long */
	int		named;		/* a name or filename parameter */
	int		attachment;	/* Content-Disposition: attachment */
	enum cte	cte;
};

typedef void (*param_cb)(void *arg, const char *name, size_t nlen,
    const char *val, size_t vlen, int quoted);

static int
is_tchar(int c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skips white space (CR and LF too: part headers are parsed folded) and
 * comments.  An unclosed comment runs to the end. */
static const char *
skip_cfws(const char *s, const char *end)
{
	int depth;

	while (s < end) {
		if (is_space((unsigned char)*s)) {
			s++;
			continue;
		}
		if (*s != '(')
			break;
		for (depth = 0; s < end; s++) {
			if (*s == '\\' && s + 1 < end)
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
		}
	}
	return s;
}

/*
 * Parses "type/subtype; name=value; ..." (slash set: Content-Type) or
 * "type; name=value" (Content-Disposition) from s[0..n).  type gets the
 * lowercase type, "" when missing or invalid.  Lenient where real mail is
 * sloppy: an unquoted value runs to the next ';' or white space (so
 * boundary=----=_Part_1 works), an unclosed quote to the end, garbage
 * before a ';' is skipped.  cb sees quoted values without the quotes but
 * with their backslash escapes.
 */
static void
ct_parse(const char *s, size_t n, int slash, char *type, size_t typesz,
    param_cb cb, void *arg)
{
	const char *end = s + n, *t, *st = s, *v, *semi;
	size_t tl, sl = 0, i, k = 0;

	type[0] = '\0';
	s = skip_cfws(s, end);
	for (t = s; s < end && is_tchar((unsigned char)*s); s++)
		;
	tl = (size_t)(s - t);
	s = skip_cfws(s, end);
	if (slash && s < end && *s == '/') {
		s = skip_cfws(s + 1, end);
		for (st = s; s < end && is_tchar((unsigned char)*s); s++)
			;
		sl = (size_t)(s - st);
	}
	if (tl > 0 && tl + sl + 2 < typesz) {
		for (i = 0; i < tl; i++)
			type[k++] = (char)a_lower((unsigned char)t[i]);
		if (slash) {
			type[k++] = '/';
			for (i = 0; i < sl; i++)
				type[k++] = (char)a_lower((unsigned char)st[i]);
		}
		type[k] = '\0';
		if (slash && sl == 0) {
			/* "text" alone is common enough to honour. */
			if (strcmp(type, "text/") == 0)
				snprintf(type, typesz, "text/plain");
			else if (strcmp(type, "multipart/") == 0)
				snprintf(type, typesz, "multipart/mixed");
			else
				type[0] = '\0';
		}
	}
	while (s < end && (semi = memchr(s, ';', (size_t)(end - s))) != NULL) {
		s = skip_cfws(semi + 1, end);
		for (t = s; s < end && is_tchar((unsigned char)*s); s++)
			;
		tl = (size_t)(s - t);
		s = skip_cfws(s, end);
		if (tl == 0 || s >= end || *s != '=')
			continue;
		s = skip_cfws(s + 1, end);
		if (s < end && *s == '"') {
			for (v = ++s; s < end && *s != '"'; s++)
				if (*s == '\\' && s + 1 < end)
					s++;
			cb(arg, t, tl, v, (size_t)(s - v), 1);
			if (s < end)
				s++;
		} else {
			for (v = s; s < end && *s != ';' && !is_space((unsigned char)*s); s++)
				;
			cb(arg, t, tl, v, (size_t)(s - v), 0);
		}
	}
}

/* name, name*, name*0, name*0*, filename... */
static int
is_name_param(const char *name, size_t n)
{
	size_t k;

	if (n >= 4 && span_eq_ci(name, 4, "name"))
		k = 4;
	else if (n >= 8 && span_eq_ci(name, 8, "filename"))
		k = 8;
	else
		return 0;
	return n == k || name[k] == '*';
}

static void
ct_param(void *arg, const char *name, size_t nlen, const char *val,
    size_t vlen, int quoted)
{
	struct part_info *pi = arg;
	size_t i, k = 0;

	if (span_eq_ci(name, nlen, "charset") && !pi->has_charset) {
		pi->has_charset = 1;
		if (vlen >= sizeof(pi->charset))
			vlen = 0;	/* absurd: treat as unlabelled */
		memcpy(pi->charset, val, vlen);
		pi->charset[vlen] = '\0';
	} else if (span_eq_ci(name, nlen, "boundary") && !pi->has_boundary) {
		pi->has_boundary = 1;
		for (i = 0; i < vlen && k < MSG_MAX_BOUNDARY; i++) {
			if (quoted && val[i] == '\\' && i + 1 < vlen)
				i++;
			pi->boundary[k++] = val[i];
		}
		if (i < vlen || k == 0)
			pi->boundary_bad = 1;
		pi->boundary[k] = '\0';
		pi->blen = k;
	} else if (is_name_param(name, nlen))
		pi->named = 1;
}

static void
cd_param(void *arg, const char *name, size_t nlen, const char *val,
    size_t vlen, int quoted)
{
	struct part_info *pi = arg;

	(void)val;
	(void)vlen;
	(void)quoted;
	if (is_name_param(name, nlen))
		pi->named = 1;
}

static enum cte
cte_parse(const char *s, size_t n)
{
	const char *end = s + n, *t;

	s = skip_cfws(s, end);
	for (t = s; s < end && is_tchar((unsigned char)*s); s++)
		;
	if (span_eq_ci(t, (size_t)(s - t), "base64"))
		return CTE_BASE64;
	if (span_eq_ci(t, (size_t)(s - t), "quoted-printable"))
		return CTE_QP;
	return CTE_IDENTITY;
}

/*
 * Fills pi from the raw Content-* values (NULL when absent).  An absent or
 * invalid Content-Type means text/plain (RFC 2045 5.2), message/rfc822
 * inside multipart/digest.
 */
static void
part_info_fill(struct part_info *pi, const char *ct, size_t ctl,
    const char *cte, size_t ctel, const char *cd, size_t cdl, int digest)
{
	char dtype[32];

	memset(pi, 0, sizeof(*pi));
	if (ct != NULL)
		ct_parse(ct, ctl, 1, pi->type, sizeof(pi->type), ct_param, pi);
	if (pi->type[0] == '\0')
		snprintf(pi->type, sizeof(pi->type), "%s",
		    digest ? "message/rfc822" : "text/plain");
	if (cte != NULL)
		pi->cte = cte_parse(cte, ctel);
	if (cd != NULL) {
		ct_parse(cd, cdl, 0, dtype, sizeof(dtype), cd_param, pi);
		if (strcmp(dtype, "attachment") == 0)
			pi->attachment = 1;
	}
}

/* ------------------------------------------------------------------ */
/* The MIME walk                                                        */

struct part_hdrs {
	const char	*ct, *cte, *cd;
	size_t		 ctl, ctel, cdl;
};

static void
part_hdr(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct part_hdrs *h = arg;

	if (nlen < 12 || !span_eq_ci(name, 8, "content-"))
		return;
	if (h->ct == NULL && span_eq_ci(name, nlen, "content-type")) {
		h->ct = val;
		h->ctl = vlen;
	} else if (h->cte == NULL &&
	    span_eq_ci(name, nlen, "content-transfer-encoding")) {
		h->cte = val;
		h->ctel = vlen;
	} else if (h->cd == NULL && span_eq_ci(name, nlen, "content-disposition")) {
		h->cd = val;
		h->cdl = vlen;
	}
}

struct walk {
	const char		*plain, *plain_end;
	struct part_info	 plain_pi;
	int			 have_plain;
	const char		*html, *html_end;
	struct part_info	 html_pi;
	int			 have_html;
	const char		*msg, *msg_end;	/* first message/rfc822 */
	int			 msg_depth;
	int			 have_msg;
	unsigned		 flags;
	struct dec		*dx;	/* its parts_left */
};

static void walk_body(struct walk *, const struct part_info *, const char *,
    const char *, int);

/* Walks one MIME entity (header and body); after MSG_MAX_PARTS of them
 * in a call, none (MSG_TRUNCATED). */
static void
walk_entity(struct walk *w, const char *p, const char *e, int depth, int digest)
{
	struct part_hdrs h;
	struct part_info pi;
	const char *body;

	if (w->dx->parts_left == 0) {
		*w->dx->flags |= MSG_TRUNCATED;
		return;
	}
	w->dx->parts_left--;
	memset(&h, 0, sizeof(h));
	body = hdr_block(p, e, 0, part_hdr, &h, &w->flags);
	part_info_fill(&pi, h.ct, h.ctl, h.cte, h.ctel, h.cd, h.cdl, digest);
	walk_body(w, &pi, body, e, depth);
}

/* A delimiter line: "--" boundary ["--"] white space.  1 = delimiter,
 * 2 = close delimiter, 0 = neither. */
static int
is_delimiter(const char *p, const char *cend, const char *bd, size_t bl)
{
	const char *q;
	int close = 0;

	if ((size_t)(cend - p) < 2 + bl || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, bd, bl) != 0)
		return 0;
	q = p + 2 + bl;
	if (cend - q >= 2 && q[0] == '-' && q[1] == '-') {
		q += 2;
		close = 1;
	}
	if (!all_space(q, (size_t)(cend - q)))
		return 0;
	return close ? 2 : 1;
}

/*
 * Splits a multipart body at its delimiters and walks each part.  A
 * missing close delimiter (input cut short) ends the last part at the end
 * of the input.  Returns the number of delimiters seen; reading stops when
 * the call may walk no more parts.
 */
static int
multipart_split(struct walk *w, const char *b, const char *e, const char *bd,
    size_t bl, int depth, int digest)
{
	const char *p = b, *next, *cend, *part = NULL, *pend;
	int found = 0, d;

	for (; p < e; p = next) {
		next = line_next(p, e, &cend);
		if (cend - p < 2 || p[0] != '-' || p[1] != '-' ||
		    (d = is_delimiter(p, cend, bd, bl)) == 0)
			continue;
		if (part != NULL) {
			if (w->dx->parts_left == 0) {
				*w->dx->flags |= MSG_TRUNCATED;
				return found;
			}
			/* The line end before a delimiter belongs to it. */
			pend = p;
			if (pend > part && pend[-1] == '\n')
				pend--;
			if (pend > part && pend[-1] == '\r')
				pend--;
			walk_entity(w, part, pend, depth + 1, digest);
		}
		found++;
		part = next;
		if (d == 2)
			return found;	/* the epilogue is not content */
	}
	if (found > 0) {
		w->flags |= MSG_MALFORMED;
		walk_entity(w, part, e, depth + 1, digest);
	}
	return found;
}

/*
 * For multiparts whose boundary is missing or never used: the first line
 * that looks like a delimiter and is followed by a Content-* field.
 */
static size_t
boundary_guess(const char *b, const char *e, char *out, size_t outsz)
{
	const char *p, *next, *cend, *q, *ncend;
	size_t n;

	for (p = b; p < e; p = next) {
		next = line_next(p, e, &cend);
		if (cend - p < 3 || p[0] != '-' || p[1] != '-')
			continue;
		for (q = p + 2; q < cend && !is_space((unsigned char)*q); q++)
			;
		n = (size_t)(q - (p + 2));
		if (n == 0 || n >= outsz || !all_space(q, (size_t)(cend - q)))
			continue;
		if (next >= e)
			break;
		line_next(next, e, &ncend);
		if (ncend - next >= 8 && span_eq_ci(next, 8, "content-")) {
			memcpy(out, p + 2, n);
			out[n] = '\0';
			return n;
		}
	}
	return 0;
}

static void
take_text(struct walk *w, const struct part_info *pi, const char *b,
    const char *e, int html)
{
	if (html && !w->have_html) {
		w->have_html = 1;
		w->html = b;
		w->html_end = e;
		w->html_pi = *pi;
	} else if (!html && !w->have_plain) {
		w->have_plain = 1;
		w->plain = b;
		w->plain_end = e;
		w->plain_pi = *pi;
	}
}

static void
walk_multipart(struct walk *w, const struct part_info *pi, const char *b,
    const char *e, int depth)
{
	char guess[MSG_MAX_BOUNDARY + 1];
	struct part_info tp;
	int digest = strcmp(pi->type, "multipart/digest") == 0;
	size_t gl;

	if (pi->blen > 0 && !pi->boundary_bad &&
	    multipart_split(w, b, e, pi->boundary, pi->blen, depth, digest) > 0)
		return;
	w->flags |= MSG_MALFORMED;
	gl = boundary_guess(b, e, guess, sizeof(guess));
	if (gl > 0 && (gl != pi->blen || memcmp(guess, pi->boundary, gl) != 0) &&
	    multipart_split(w, b, e, guess, gl, depth, digest) > 0)
		return;
	/* No structure at all: what is there is most likely the text. */
	tp = *pi;
	snprintf(tp.type, sizeof(tp.type), "text/plain");
	take_text(w, &tp, b, e, 0);
}

static void
walk_body(struct walk *w, const struct part_info *pi, const char *b,
    const char *e, int depth)
{
	const char *t = pi->type;

	if (strncmp(t, "multipart/", 10) == 0) {
		if (strcmp(t + 10, "report") == 0)
			w->flags |= MSG_REPORT;
		if (depth >= MSG_MAX_DEPTH) {
			w->flags |= MSG_MALFORMED;
			return;
		}
		walk_multipart(w, pi, b, e, depth);
		return;
	}
	if (strcmp(t, "message/delivery-status") == 0 ||
	    strcmp(t, "message/global-delivery-status") == 0) {
		w->flags |= MSG_REPORT;
		return;
	}
	if (strcmp(t, "message/rfc822") == 0 || strcmp(t, "message/global") == 0) {
		if (!w->have_msg) {
			w->have_msg = 1;
			w->msg = b;
			w->msg_end = e;
			w->msg_depth = depth;
		}
		return;
	}
	if (pi->attachment || pi->named)
		return;
	if (strcmp(t, "text/plain") == 0)
		take_text(w, pi, b, e, 0);
	else if (strcmp(t, "text/html") == 0)
		take_text(w, pi, b, e, 1);
}

/* ------------------------------------------------------------------ */
/* Body text                                                            */

/* <meta charset="..."> or http-equiv content="...; charset=..." near the
 * start of an HTML part that has no charset parameter. */
static size_t
html_meta_charset(const char *s, size_t n, const char **cs)
{
	size_t i, j, st;

	if (n > 4096)
		n = 4096;
	for (i = 0; i + 7 <= n; i++) {
		if ((s[i] | 0x20) != 'c' || !span_eq_ci(s + i, 7, "charset"))
			continue;
		for (j = i + 7; j < n && is_space((unsigned char)s[j]); j++)
			;
		if (j >= n || s[j] != '=')
			continue;
		for (j++; j < n && (is_space((unsigned char)s[j]) ||
		    s[j] == '"' || s[j] == '\''); j++)
			;
		for (st = j; j < n && (is_tchar((unsigned char)s[j])) &&
		    s[j] != '\'' && s[j] != '>'; j++)
			;
		if (j > st) {
			*cs = s + st;
			return j - st;
		}
	}
	return 0;
}

/*
 * Decodes the chosen part into m->text.  Work is bounded by max_text:
 * transfer decoding stops at a multiple of it (8x for text, enough for
 * UTF-16/32 and CRLF; 16x or 1 MiB for HTML, whose markup outweighs its
 * text), the charset conversion output is capped likewise, and the final
 * pass cuts on a character boundary.
 */
static void
part_text(struct msg *m, struct dec *dx, const struct part_info *pi, const char *b,
    const char *e, int html, size_t max_text)
{
	struct buf td, cv, hb, fin;
	const char *data, *u, *cs;
	size_t dlen, ulen, cslen, src_cap, hl = 0;
	char *h = NULL;
	int direct, trunc = 0;

	src_cap = html ? sat_mul(max_text, 16) : sat_add(sat_mul(max_text, 8), 64);
	if (html && src_cap < MSG_HTML_SRC_MIN)
		src_cap = MSG_HTML_SRC_MIN;
	buf_init(&td, src_cap);
	switch (pi->cte) {
	case CTE_BASE64:
		presize(&td, (size_t)(e - b) / 4 * 3 + 3);
		if (b64_decode(b, (size_t)(e - b), &td, 0) > 0)
			m->flags |= MSG_MALFORMED;
		data = buf_str(&td);
		dlen = td.len;
		break;
	case CTE_QP:
		presize(&td, (size_t)(e - b));
		qp_decode(b, (size_t)(e - b), &td, 0);
		data = buf_str(&td);
		dlen = td.len;
		break;
	default:
		data = b;
		dlen = (size_t)(e - b);
		if (dlen > src_cap) {
			dlen = src_cap;
			trunc = 1;
		}
		break;
	}
	if (td.truncated)
		trunc = 1;

	cs = pi->charset;
	cslen = strlen(cs);
	if (html && cslen == 0)
		cslen = html_meta_charset(data, dlen, &cs);
	buf_init(&cv, html ? sat_mul(src_cap, 2) : sat_add(sat_mul(max_text, 2), 64));
	if (cslen > 0 && !span_eq_ci(cs, cslen, "utf-8"))
		presize(&cv, sat_add(sat_mul(dlen, 2), 16));
	to_utf8(dx, cs, cslen, data, dlen, &cv, &direct);
	if (direct) {
		u = data;
		ulen = dlen;
	} else {
		u = buf_str(&cv);
		ulen = cv.len;
		if (cv.truncated)
			trunc = 1;
	}
	if (html) {
		/* libxml2 gets clean UTF-8: no NUL, no invalid bytes. */
		buf_init(&hb, sat_mul(src_cap, 3));
		presize(&hb, sat_add(ulen, 16));
		utf8_clean(&hb, u, ulen, 0);
		h = html_text_extract(buf_str(&hb), hb.len,
		    sat_add(sat_mul(max_text, 2), 64), &hl, &trunc);
		buf_free(&hb);
		u = h;
		ulen = hl;
	}
	if (ulen >= 3 && memcmp(u, "\xef\xbb\xbf", 3) == 0) {
		u += 3;		/* byte order mark */
		ulen -= 3;
	}
	buf_init(&fin, max_text);
	presize(&fin, sat_add(ulen, 16));
	if (utf8_clean(&fin, u, ulen, CLEAN_NL) < 0)
		trunc = 1;
	if (trunc)
		m->flags |= MSG_TRUNCATED;
	m->text_len = fin.len;
	m->text = buf_steal(&fin);
	free(h);
	buf_free(&cv);
	buf_free(&td);
}

/* ------------------------------------------------------------------ */
/* Addresses and message ids                                            */

static char *
addr_dup(const char *s, size_t n)
{
	char *r, *p;

	trim_span(&s, &n);
	if (n >= 7 && span_eq_ci(s, 7, "mailto:")) {
		s += 7;
		n -= 7;
	}
	r = clean_dup(s, n, MSG_MAX_ADDR, NULL);
	for (p = r; *p; p++)
		*p = (char)a_lower((unsigned char)*p);
	return r;
}

static int
addr_ok(const char *a)
{
	return *a != '\0' && strlen(a) <= MSG_MAX_ADDR &&
	    strpbrk(a, " \t\r\n<>(),;\"") == NULL;
}

/* The display name: decoded, quotes and escapes removed. */
static char *
name_dup(const char *s, size_t n, struct dec *dx)
{
	struct buf b;
	size_t i;
	char *r;

	trim_span(&s, &n);
	buf_init(&b, MSG_MAX_VALUE);
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			continue;
		if (s[i] == '\\' && i + 1 < n)
			i++;
		buf_append_char(&b, s[i]);
	}
	r = hdr_value_decode(buf_str(&b), b.len, dx);
	buf_free(&b);
	return r;
}

/* "addr (Name)": the first comment, as a last resort display name. */
static char *
comment_name(const char *s, size_t n, struct dec *dx)
{
	const char *o = memchr(s, '(', n), *c;

	if (o == NULL || (c = memchr(o, ')', (size_t)(s + n - o))) == NULL)
		return NULL;
	return name_dup(o + 1, (size_t)(c - o - 1), dx);
}

/* Our own reading of From, for what libetpan rejects: the last <...>, or
 * else the first word with an '@'. */
static void
from_fallback(struct msg *m, struct dec *dx, const char *s, size_t n)
{
	const char *lt = NULL, *gt, *p, *end = s + n, *t;
	size_t i;

	for (i = n; i > 0; i--)
		if (s[i - 1] == '<') {
			lt = s + i - 1;
			break;
		}
	if (lt != NULL && (gt = memchr(lt, '>', (size_t)(end - lt))) != NULL) {
		m->from_address = addr_dup(lt + 1, (size_t)(gt - lt - 1));
		m->from_name = name_dup(s, (size_t)(lt - s), dx);
		return;
	}
	for (p = s; p < end; p = t) {
		while (p < end && strchr(" \t\r\n,;<>()\"", *p) != NULL && *p != '\0')
			p++;
		for (t = p; t < end && strchr(" \t\r\n,;<>()\"", *t) == NULL; t++)
			;
		if (t > p && memchr(p, '@', (size_t)(t - p)) != NULL) {
			m->from_address = addr_dup(p, (size_t)(t - p));
			m->from_name = comment_name(s, n, dx);
			return;
		}
		if (t == p)
			break;
	}
}

/* libetpan parses comments by recursion: keep its stack use small for
 * milter threads by not handing it deeply nested parentheses. */
static int
parens_shallow(const char *s, size_t n)
{
	size_t i;
	int depth = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '(' && ++depth > 8)
			return 0;
		if (s[i] == ')' && depth > 0)
			depth--;
	}
	return 1;
}

static void
parse_from(struct msg *m, struct dec *dx, const char *s, size_t n)
{
	struct mailimf_mailbox_list *ml = NULL;
	struct mailimf_mailbox *mb;
	clistiter *it;
	size_t idx = 0;

	if (n > 0 && n <= MSG_FROM_LIBETPAN_MAX && parens_shallow(s, n) &&
	    mailimf_mailbox_list_parse(s, n, &idx, &ml) == MAILIMF_NO_ERROR &&
	    ml != NULL) {
		it = clist_begin(ml->mb_list);
		mb = it != NULL ? clist_content(it) : NULL;
		/* An address without '@' ("<MAILER-DAEMON>") only when it
		 * is the whole field, not "undisclosed-recipients:;". */
		while (idx < n && is_space((unsigned char)s[idx]))
			idx++;
		if (mb != NULL && mb->mb_addr_spec != NULL &&
		    addr_ok(mb->mb_addr_spec) &&
		    (strchr(mb->mb_addr_spec, '@') != NULL || idx >= n)) {
			m->from_address = addr_dup(mb->mb_addr_spec,
			    strlen(mb->mb_addr_spec));
			if (mb->mb_display_name != NULL)
				m->from_name = name_dup(mb->mb_display_name,
				    strlen(mb->mb_display_name), dx);
		}
		mailimf_mailbox_list_free(ml);
	}
	if (m->from_address == NULL) {
		free(m->from_name);
		m->from_name = NULL;
		from_fallback(m, dx, s, n);
	}
	if (m->from_name == NULL || m->from_name[0] == '\0') {
		free(m->from_name);
		m->from_name = comment_name(s, n, dx);
	}
}

struct span {
	const char	*p;
	size_t		 n;
};

/* The msg-ids in s: every "<...>"; when there is none, the bare words
 * with an '@' (some mailers drop the brackets).  Caller frees *out. */
static size_t
msgid_spans(const char *s, size_t n, struct span **out)
{
	struct span *v = NULL;
	const char *p = s, *end = s + n, *gt, *t;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if ((gt = memchr(p + 1, '>', (size_t)(end - p - 1))) == NULL)
			break;
		t = p + 1;
		if (gt > t) {
			if (cnt == cap) {
				cap = cap ? cap * 2 : 8;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[cnt].p = t;
			v[cnt++].n = (size_t)(gt - t);
		}
		p = gt + 1;
	}
	for (p = s; cnt == 0 && p < end; p = t) {
		while (p < end && strchr(" \t\r\n,<>", *p) != NULL && *p != '\0')
			p++;
		for (t = p; t < end && strchr(" \t\r\n,<>", *t) == NULL; t++)
			;
		if (t == p)
			break;
		if (memchr(p, '@', (size_t)(t - p)) != NULL) {
			v = xrealloc(v, sizeof(*v));
			v[0].p = p;
			v[0].n = (size_t)(t - p);
			cnt = 1;
		}
	}
	*out = v;
	return cnt;
}

static char *
msgid_dup(const struct span *sp)
{
	struct buf b;
	size_t i;
	char *r;

	buf_init(&b, MSG_MAX_ID);
	for (i = 0; i < sp->n; i++)
		if (!is_space((unsigned char)sp->p[i]))
			buf_append_char(&b, sp->p[i]);
	r = clean_dup(buf_str(&b), b.len, MSG_MAX_ID, NULL);
	buf_free(&b);
	return r;
}

static char *
first_msgid(const char *raw)
{
	struct span *v;
	char *r;

	if (raw == NULL || msgid_spans(raw, strlen(raw), &v) == 0)
		return xstrdup("");
	r = msgid_dup(&v[0]);
	free(v);
	return r;
}

/* References, oldest first; past MSG_MAX_REFERENCES the root and the most
 * recent ones are kept, which is what threading needs. */
static void
parse_references(struct msg *m, const char *raw)
{
	struct span *v;
	size_t cnt, i, from;

	if (raw == NULL || (cnt = msgid_spans(raw, strlen(raw), &v)) == 0)
		return;
	from = cnt > MSG_MAX_REFERENCES ? cnt - (MSG_MAX_REFERENCES - 1) : 0;
	m->references = xcalloc(cnt < MSG_MAX_REFERENCES ? cnt : MSG_MAX_REFERENCES,
	    sizeof(char *));
	if (from > 0)
		m->references[m->reference_count++] = msgid_dup(&v[0]);
	for (i = from; i < cnt; i++)
		m->references[m->reference_count++] = msgid_dup(&v[i]);
	free(v);
}

/* ------------------------------------------------------------------ */
/* msg_parse                                                            */

struct top {
	struct msg	*m;
	struct dec	*dx;
	size_t		 cap;
	struct buf	 unf;
	int		 seen_from;
};

/* Unfolds a raw value into b: CR and LF dropped, ends trimmed. */
static void
unfold(struct buf *b, const char *v, size_t n)
{
	const char *p, *end, *nl, *e;

	buf_reset(b);
	trim_span(&v, &n);
	end = v + n;
	for (p = v; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		e = nl ? nl : end;
		if (e > p && e[-1] == '\r')
			e--;
		buf_append(b, p, (size_t)(e - p));
		if (nl == NULL)
			break;
	}
}

static void
top_hdr(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct top *t = arg;
	struct msg *m = t->m;
	struct msg_header *h;
	const char *u;
	size_t ul;
	int trunc = 0;

	if (m->header_count >= MSG_MAX_HEADERS) {
		m->flags |= MSG_TRUNCATED;
		return;
	}
	if (m->header_count == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		m->headers = xrealloc(m->headers, t->cap * sizeof(*m->headers));
	}
	unfold(&t->unf, val, vlen);
	u = buf_str(&t->unf);
	ul = t->unf.len;
	if (t->unf.truncated)
		trunc = 1;
	h = &m->headers[m->header_count++];
	h->name = clean_dup(name, nlen, MSG_MAX_VALUE, &trunc);
	h->raw = clean_dup(u, ul, MSG_MAX_VALUE, &trunc);
	if (!has_encoded_word_start(u, ul) && utf8_valid(u, ul))
		h->value = xstrdup(h->raw);
	else
		h->value = hdr_value_decode(u, ul, t->dx);
	if (trunc)
		m->flags |= MSG_TRUNCATED;
	if (!t->seen_from && span_eq_ci(name, nlen, "from")) {
		t->seen_from = 1;
		parse_from(m, t->dx, u, ul);
	}
}

static int
blank_text(const char *s)
{
	for (; *s; s++)
		if (!is_space((unsigned char)*s))
			return 0;
	return 1;
}

struct msg *
msg_parse(const char *raw, size_t len, size_t max_text)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	struct top t;
	struct dec dx;
	struct walk w;
	struct part_info pi;
	const char *end, *body, *ct, *cte, *cd, *s;

	if (raw == NULL) {
		raw = "";
		len = 0;
	}
	end = raw + len;
	dec_init(&dx, &m->flags);
	memset(&t, 0, sizeof(t));
	t.m = m;
	t.dx = &dx;
	buf_init(&t.unf, MSG_MAX_VALUE);
	body = hdr_block(raw, end, 1, top_hdr, &t, &m->flags);
	buf_free(&t.unf);

	s = msg_header(m, "Subject");
	m->subject = xstrdup(s ? s : "");
	if (m->from_address == NULL)
		m->from_address = xstrdup("");
	if (m->from_name == NULL)
		m->from_name = xstrdup("");
	m->message_id = first_msgid(msg_header_raw(m, "Message-ID"));
	m->in_reply_to = first_msgid(msg_header_raw(m, "In-Reply-To"));
	parse_references(m, msg_header_raw(m, "References"));

	ct = msg_header_raw(m, "Content-Type");
	cte = msg_header_raw(m, "Content-Transfer-Encoding");
	cd = msg_header_raw(m, "Content-Disposition");
	part_info_fill(&pi, ct, ct ? strlen(ct) : 0, cte, cte ? strlen(cte) : 0,
	    cd, cd ? strlen(cd) : 0, 0);
	m->content_type = xstrdup(pi.type);

	memset(&w, 0, sizeof(w));
	w.dx = &dx;
	walk_body(&w, &pi, body, end, 0);
	m->flags |= w.flags;
	/* Forwarded messages are read only when there is nothing else, and
	 * never make the message a delivery report. */
	while (!w.have_plain && !w.have_html && w.have_msg &&
	    w.msg_depth < MSG_MAX_DEPTH) {
		const char *mb = w.msg, *me = w.msg_end;
		int d = w.msg_depth + 1;

		memset(&w, 0, sizeof(w));
		w.dx = &dx;
		walk_entity(&w, mb, me, d, 0);
		m->flags |= w.flags & ~(unsigned)MSG_REPORT;
	}
	if (w.have_plain)
		part_text(m, &dx, &w.plain_pi, w.plain, w.plain_end, 0, max_text);
	else if (w.have_html) {
		part_text(m, &dx, &w.html_pi, w.html, w.html_end, 1, max_text);
		m->flags |= MSG_HTML_ONLY;
	} else {
		m->text = xstrdup("");
		m->text_len = 0;
	}
	if (blank_text(m->text))
		m->flags |= MSG_NO_TEXT;
	dec_free(&dx);
	return m;
}

/* ------------------------------------------------------------------ */
/* Rewriting a body                                                     */

static void
span_set(struct msg_text_span *sp, const char *raw, const char *b, const char *e,
    const struct part_info *pi, int html)
{
	sp->found = 1;
	sp->start = (size_t)(b - raw);
	sp->end = (size_t)(e - raw);
	sp->cte = pi->cte == CTE_BASE64 ? MSG_CTE_BASE64 : pi->cte == CTE_QP ? MSG_CTE_QP :
	    MSG_CTE_IDENTITY;
	sp->html = html;
}

void
msg_text_spans(const char *raw, size_t len, struct msg_text_span *plain,
    struct msg_text_span *html)
{
	struct part_hdrs h;
	struct part_info pi;
	struct dec dx;
	struct walk w;
	unsigned flags = 0;
	const char *body;

	memset(plain, 0, sizeof(*plain));
	memset(html, 0, sizeof(*html));
	if (raw == NULL)
		return;
	memset(&h, 0, sizeof(h));
	body = hdr_block(raw, raw + len, 1, part_hdr, &h, &flags);
	part_info_fill(&pi, h.ct, h.ctl, h.cte, h.ctel, h.cd, h.cdl, 0);
	dec_init(&dx, &flags);
	memset(&w, 0, sizeof(w));
	w.dx = &dx;
	walk_body(&w, &pi, body, raw + len, 0);
	if (w.have_plain)
		span_set(plain, raw, w.plain, w.plain_end, &w.plain_pi, 0);
	if (w.have_html)
		span_set(html, raw, w.html, w.html_end, &w.html_pi, 1);
	dec_free(&dx);
}

void
msg_cte_decode(int cte, const char *in, size_t len, struct buf *out)
{
	if (cte == MSG_CTE_BASE64)
		b64_decode(in, len, out, 0);
	else if (cte == MSG_CTE_QP)
		qp_decode(in, len, out, 0);
	else
		buf_append(out, in, len);
}

/* Quoted-printable (RFC 2045 6.7) with CRLF line ends, lines of at most
 * 76 characters; a line end in the text stays a line end. */
static void
qp_encode(const char *in, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char enc[3];
		size_t n = 1;

		if (c == '\n' || (c == '\r' && i + 1 < len && in[i + 1] == '\n')) {
			if (c == '\r')
				i++;
			buf_append(out, "\r\n", 2);
			col = 0;
			continue;
		}
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && i + 1 < len && in[i + 1] != '\r' && in[i + 1] != '\n'))
			enc[0] = (char)c;
		else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			n = 3;
		}
		if (col + n > 75) {
			buf_append(out, "=\r\n", 3);
			col = 0;
		}
		buf_append(out, enc, n);
		col += n;
	}
}

void
msg_cte_encode(int cte, const char *in, size_t len, struct buf *out)
{
	if (cte == MSG_CTE_BASE64) {
		for (size_t i = 0; i < len; i += 57) {
			b64_encode(out, (const unsigned char *)in + i, len - i < 57 ? len - i : 57);
			buf_append(out, "\r\n", 2);
		}
	} else if (cte == MSG_CTE_QP)
		qp_encode(in, len, out);
	else
		buf_append(out, in, len);
}

void
msg_free(struct msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->header_count; i++) {
		free(m->headers[i].name);
		free(m->headers[i].raw);
		free(m->headers[i].value);
	}
	free(m->headers);
	for (i = 0; i < m->reference_count; i++)
		free(m->references[i]);
	free(m->references);
	free(m->subject);
	free(m->from_address);
	free(m->from_name);
	free(m->message_id);
	free(m->in_reply_to);
	free(m->content_type);
	free(m->text);
	free(m);
}

static const struct msg_header *
header_find(const struct msg *m, const char *name)
{
	size_t i;

	if (m == NULL || name == NULL)
		return NULL;
	for (i = 0; i < m->header_count; i++)
		if (strcasecmp(m->headers[i].name, name) == 0)
			return &m->headers[i];
	return NULL;
}

const char *
msg_header(const struct msg *m, const char *name)
{
	const struct msg_header *h = header_find(m, name);

	return h ? h->value : NULL;
}

const char *
msg_header_raw(const struct msg *m, const char *name)
{
	const struct msg_header *h = header_find(m, name);

	return h ? h->raw : NULL;
}
