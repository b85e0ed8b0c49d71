/*
 * test_msg - unit tests for shared/msg.c (and html_text.c through it).
 *
 * Every parse result also goes through check_invariants(): all strings
 * valid UTF-8, no NUL inside text, text_len consistent, within max_text.
 * Sample messages are read from tests/data (found relative to the current
 * directory or up to three levels above it, or from $HG_TEST_DATA).  The
 * work caps (MSG_MAX_*) are shown holding at their values, and a message
 * past one still classified, with the shipped rules (conf/keywords, found
 * like tests/data).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"
#include "t.h"

/* ------------------------------------------------------------------ */

static int
valid_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		unsigned c = *s;
		size_t k, i;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 2;
		else if (c >= 0xe0 && c <= 0xef)
			k = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 4;
		else
			return 0;
		for (i = 1; i < k; i++)
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (c == 0xed && s[1] > 0x9f)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;
		if (c == 0xf4 && s[1] > 0x8f)
			return 0;
		s += k;
	}
	return 1;
}

static int invariant_failures;

static void
check_invariants(const struct msg *m, size_t max_text)
{
	size_t i;
	int ok = 1;

	ok &= m->subject && valid_utf8(m->subject);
	ok &= m->from_address && valid_utf8(m->from_address);
	ok &= m->from_name && valid_utf8(m->from_name);
	ok &= m->message_id && valid_utf8(m->message_id);
	ok &= m->in_reply_to && valid_utf8(m->in_reply_to);
	ok &= m->content_type && valid_utf8(m->content_type);
	ok &= m->text && valid_utf8(m->text);
	ok &= m->text && strlen(m->text) == m->text_len;
	ok &= m->text_len <= max_text;
	ok &= m->header_count <= 1000;
	for (i = 0; i < m->header_count; i++) {
		ok &= valid_utf8(m->headers[i].name);
		ok &= valid_utf8(m->headers[i].raw);
		ok &= valid_utf8(m->headers[i].value);
		ok &= strlen(m->headers[i].raw) <= 64 * 1024;
		ok &= strlen(m->headers[i].value) <= 64 * 1024;
	}
	for (i = 0; i < m->reference_count; i++)
		ok &= valid_utf8(m->references[i]);
	if (!ok)
		invariant_failures++;
}

static struct msg *
parse(const char *s, size_t max)
{
	struct msg *m = msg_parse(s, strlen(s), max);

	check_invariants(m, max);
	return m;
}

static struct msg *
parse_n(const char *s, size_t n, size_t max)
{
	struct msg *m = msg_parse(s, n, max);

	check_invariants(m, max);
	return m;
}

static void
eq_decoded(const char *raw, const char *want)
{
	char *d = msg_decode_header_value(raw);

	T_EQ_STR(d, want);
	free(d);
}

/* "Subject: <subj>" + body with the given Content-Type / encoding. */
static struct msg *
mk(const char *ctype, const char *cte, const char *body)
{
	char buf[8192];
	int n;

	n = snprintf(buf, sizeof(buf),
	    "From: a@client.test\nSubject: t\nMIME-Version: 1.0\n"
	    "Content-Type: %s\n%s%s%s\n%s",
	    ctype, cte ? "Content-Transfer-Encoding: " : "", cte ? cte : "",
	    cte ? "\n" : "", body);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort();
	return parse(buf, 65536);
}

static const char *exe_path;	/* argv[0]: build/san/tests/test_msg */

static char *
read_file(const char *name, size_t *len)
{
	static const char *const dirs[] = { "tests/data", "../tests/data",
	    "../../tests/data", "../../../tests/data" };
	char path[512];
	const char *env = getenv("HG_TEST_DATA"), *slash;
	FILE *f = NULL;
	char *buf;
	size_t i, n, cap = 1 << 16;

	if (env != NULL) {
		snprintf(path, sizeof(path), "%s/%s", env, name);
		f = fopen(path, "rb");
	}
	if (f == NULL && exe_path != NULL && (slash = strrchr(exe_path, '/')) != NULL) {
		snprintf(path, sizeof(path), "%.*s/../../../tests/data/%s",
		    (int)(slash - exe_path), exe_path, name);
		f = fopen(path, "rb");
	}
	for (i = 0; f == NULL && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
		f = fopen(path, "rb");
	}
	if (f == NULL)
		return NULL;
	buf = malloc(cap);
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static struct msg *
parse_file(const char *name)
{
	size_t n;
	char *s = read_file(name, &n);
	struct msg *m;

	if (s == NULL) {
		fprintf(stderr, "cannot read tests/data/%s\n", name);
		return NULL;
	}
	m = parse_n(s, n, 65536);
	free(s);
	return m;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */

static void
test_rfc2047(void)
{
	/* B and Q, upper and lower case */
	eq_decoded("=?UTF-8?B?0KHRgNC+0YfQvdC+?=", "Срочно");
	eq_decoded("=?utf-8?q?=D0=A1=D1=80=D0=BE=D1=87=D0=BD=D0=BE_!?=", "Срочно !");
	eq_decoded("=?utf-8?b?0KHRgNC+0YfQvdC+?=", "Срочно");
	/* legacy charsets */
	eq_decoded("=?koi8-r?B?89LP3s7P?=", "Срочно");
	eq_decoded("=?KOI8-R?b?89LP3s7P?=", "Срочно");
	eq_decoded("=?windows-1251?Q?=CD=E5_=F0=E0=E1=EE=F2=E0=E5=F2?=", "Не работает");
	eq_decoded("=?cp1251?Q?=CD=E5_=F0=E0=E1=EE=F2=E0=E5=F2?=", "Не работает");
	eq_decoded("=?win-1251?Q?=CD=E5?=", "Не");
	eq_decoded("=?iso-8859-5?B?v+DY0tXi?=", "Привет");
	eq_decoded("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème");
	eq_decoded("=?utf-8*en?q?hi?=", "hi");
	eq_decoded("=?unicode-1-1-utf-7?q?Hi_+BB8EQAQ4BDIENQRC-?=", "Hi Привет");
	/* text around words; adjacent words joined */
	eq_decoded("Re: =?utf-8?q?Hello?= world", "Re: Hello world");
	eq_decoded("=?utf-8?q?a?= =?utf-8?q?b?=", "ab");
	eq_decoded("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab");
	eq_decoded("=?utf-8?q?a?=\n\t=?utf-8?q?b?=", "ab");
	eq_decoded("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b");
	eq_decoded("=?utf-8?q?a_?= =?utf-8?q?_b?=", "a  b");
	/* a character split across two words (careless encoders) */
	eq_decoded("=?utf-8?B?0A==?= =?utf-8?B?oQ==?=", "С");
	/* mixed charsets, adjacent */
	eq_decoded("=?koi8-r?B?89LP3s7P?= =?utf-8?q?!_=D0=9D=D0=B5?=", "Срочно! Не");
	eq_decoded("=?iso-8859-5?B?v+DY0tXi?= =?koi8-r?B?89LP3s7P?=", "ПриветСрочно");
	/* malformed words stay as they are */
	eq_decoded("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
	eq_decoded("=?utf-8?B?!!!?=", "=?utf-8?B?!!!?=");
	eq_decoded("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
	eq_decoded("=??q?a?=", "=??q?a?=");
	eq_decoded("=?utf-8?q?has space?=", "=?utf-8?q?has space?=");
	eq_decoded("a =?utf-8?q?ok?= =?utf-8?B?***?= b", "a ok =?utf-8?B?***?= b");
	eq_decoded("=?", "=?");
	eq_decoded("", "");
	/* unknown charset: kept when valid UTF-8, else left encoded */
	eq_decoded("=?x-foo?q?abc?=", "abc");
	eq_decoded("=?x-foo?q?=FF?=", "=?x-foo?q?=FF?=");
	eq_decoded("=?x-unknown?B?0KHRgNC+0YfQvdC+?=", "Срочно");
	/* CR, LF and NUL decoded from a word become spaces; folding is removed */
	eq_decoded("=?utf-8?q?a=0D=0Ab=00c?=", "a  b c");
	eq_decoded("one\r\n two", "one two");
	/* raw 8-bit headers are guessed */
	eq_decoded("\xd1\xf0\xee\xf7\xed\xee\x21\x20\xcd\xe5\x20\xf0\xe0\xe1\xee"
	    "\xf2\xe0\xe5\xf2\x20\xef\xee\xf7\xf2\xe0", "Срочно! Не работает почта");
	eq_decoded("\xf3\xd2\xcf\xde\xce\xcf\x21\x20\xee\xc5\x20\xd2\xc1\xc2\xcf"
	    "\xd4\xc1\xc5\xd4\x20\xd0\xcf\xde\xd4\xc1", "Срочно! Не работает почта");
	eq_decoded("Gr\xfc\xdf" "e von J\xfcrgen", "Grüße von Jürgen");
	{
		char *d = msg_decode_header_value(NULL);

		T_EQ_STR(d, "");
		free(d);
	}
	/* the flag, through msg_parse */
	{
		struct msg *m = parse("Subject: =?x-foo?q?abc?=\n\nhi\n", 1024);

		T_EQ_STR(m->subject, "abc");
		T_CHECK(m->flags & MSG_UNKNOWN_CHARSET);
		msg_free(m);
		m = parse("Subject: =?utf-8?q?abc?=\n\nhi\n", 1024);
		T_CHECK(!(m->flags & MSG_UNKNOWN_CHARSET));
		msg_free(m);
	}
}

static void
test_bodies(void)
{
	struct msg *m;

	m = mk("text/plain; charset=koi8-r", "quoted-printable",
	    "=FA=C4=D2=C1=D7=D3=D4=D7=D5=CA=D4=C5!\n=F3=D2=CF=DE=CE=CF! =EE=C5 "
	    "=CF=D4=D0=D2=C1=D7=CC=D1=C0=D4=D3=D1 =D0=C9=D3=\n=D8=CD=C1, "
	    "=CB=CC=C9=C5=CE=D4=D9 =CE=C5 =D0=CF=CC=D5=DE=C1=C0=D4 =D3=DE=C5=\n=D4=C1.\n");
	T_EQ_STR(m->text, "Здравствуйте!\nСрочно! Не отправляются письма, клиенты не получают счета.\n");
	T_EQ_INT(m->flags, 0);
	msg_free(m);

	m = mk("text/plain; charset=\"windows-1251\"", "base64",
	    "xO7h8PvpIOTl7fwhIM3lIO/w6PXu5OjyIO/u9/LgLgrO6/zj4Ao=\n");
	T_EQ_STR(m->text, "Добрый день! Не приходит почта.\nОльга\n");
	msg_free(m);

	m = mk("text/plain; charset=iso-8859-5", "quoted-printable",
	    "=BF=E0=D8=D2=D5=E2, =DC=D8=E0! =BF=DE=E7=E2=D0 =DD=D5 =E0=D0=D1=DE=E2=D0=D5=\n=E2.\n");
	T_EQ_STR(m->text, "Привет, мир! Почта не работает.\n");
	msg_free(m);

	m = mk("text/plain; charset=UTF-8", "BASE64",
	    "0KLQtdGA0LzRltC90L7QstC+ISDQndC1INC90LDQtNGB0LjQu9Cw0Y7RgtGM0YHRjyDQu9C40YHR\n"
	    "gtC4LiDSkNCw0L3QvtC6LCDRl9C20LDQuiwg0ZTQvdC+0YIuCg==\n");
	T_EQ_STR(m->text, "Терміново! Не надсилаються листи. Ґанок, їжак, єнот.\n");
	msg_free(m);

	m = mk("text/plain; charset=iso-8859-1", "quoted-printable",
	    "Gr=FC=DFe, J=FCrgen =3D 100% sure=\r\nly, a=b, x=\n");
	T_EQ_STR(m->text, "Grüße, Jürgen = 100% surely, a=b, x");
	msg_free(m);

	/* windows-1252 bytes under a latin-1 label (WHATWG behaviour) */
	m = mk("text/plain; charset=iso-8859-1", NULL, "\x93quoted\x94 \x80 5\n");
	T_EQ_STR(m->text, "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac 5\n");
	msg_free(m);

	/* no charset: UTF-8 if valid, else guessed */
	m = mk("text/plain", NULL, "Привет\n");
	T_EQ_STR(m->text, "Привет\n");
	msg_free(m);
	m = mk("text/plain", "8bit", "\xc7\xe4\xf0\xe0\xe2\xf1\xf2\xe2\xf3\xe9\xf2\xe5\x21"
	    "\x20\xd3\x20\xed\xe0\xf1\x20\xed\xe5\x20\xee\xf2\xef\xf0\xe0\xe2\xeb\xff"
	    "\xfe\xf2\xf1\xff\x20\xef\xe8\xf1\xfc\xec\xe0\x2e\n");
	T_EQ_STR(m->text, "Здравствуйте! У нас не отправляются письма.\n");
	msg_free(m);
	m = mk("text/plain; charset=us-ascii", "8bit", "\xfa\xc4\xd2\xc1\xd7\xd3\xd4\xd7"
	    "\xd5\xca\xd4\xc5\x21\x20\xf5\x20\xce\xc1\xd3\x20\xce\xc5\x20\xcf\xd4\xd0"
	    "\xd2\xc1\xd7\xcc\xd1\xc0\xd4\xd3\xd1\x20\xd0\xc9\xd3\xd8\xcd\xc1\x2e\n");
	T_EQ_STR(m->text, "Здравствуйте! У нас не отправляются письма.\n");
	msg_free(m);
	m = mk("text/plain", NULL, "\xd2\xe5\xf0\xec\xb3\xed\xee\xe2\xee\x21\x20\xcd\xe5"
	    "\x20\xed\xe0\xe4\xf1\xe8\xeb\xe0\xfe\xf2\xfc\xf1\xff\x20\xeb\xe8\xf1\xf2"
	    "\xe8\x2c\x20\xbf\x20\xba\x20\xb3\x20\xb4");
	T_EQ_STR(m->text, "Терміново! Не надсилаються листи, ї є і ґ");
	msg_free(m);
	m = mk("text/plain", NULL, "Gr\xfc\xdf" "e von J\xfcrgen M\xfcller\n");
	T_EQ_STR(m->text, "Grüße von Jürgen Müller\n");
	msg_free(m);

	/* UTF-8 label with a stray byte: U+FFFD, the rest intact */
	m = mk("text/plain; charset=utf-8", NULL, "Привет \xff мир\n");
	T_EQ_STR(m->text, "Привет \xef\xbf\xbd мир\n");
	msg_free(m);
	/* overlong and surrogate encodings are invalid */
	m = mk("text/plain; charset=utf-8", NULL, "a\xc0\xaf b\xed\xa0\x80 c");
	T_CHECK(strstr(m->text, "\xc0") == NULL && strstr(m->text, "\xed\xa0") == NULL);
	msg_free(m);

	/* unknown charsets keep their bytes (sanitised) and are flagged */
	m = mk("text/plain; charset=x-unknown", NULL, "Привет\n");
	T_EQ_STR(m->text, "Привет\n");
	T_CHECK(m->flags & MSG_UNKNOWN_CHARSET);
	msg_free(m);
	m = mk("text/plain; charset=\"x-no-such-charset\"", NULL, "abc\n");
	T_EQ_STR(m->text, "abc\n");
	T_CHECK(m->flags & MSG_UNKNOWN_CHARSET);
	msg_free(m);
	m = mk("text/plain; charset=ibm037", NULL, "abc\n");	/* EBCDIC: not allowed */
	T_EQ_STR(m->text, "abc\n");
	T_CHECK(m->flags & MSG_UNKNOWN_CHARSET);
	msg_free(m);
	m = mk("text/plain; charset=utf-16le", "base64", "HwRABDgEMgQ=\n");
	T_EQ_STR(m->text, "Прив");
	msg_free(m);
	m = mk("text/plain; charset=ks_c_5601-1987", "base64", "vsiz58fPvLy/5A==\n");
	T_EQ_STR(m->text, "안녕하세요");
	msg_free(m);

	/* CRLF normalised; byte order mark dropped */
	m = mk("text/plain; charset=utf-8", NULL, "\xef\xbb\xbfline1\r\nline2\rline3\n");
	T_EQ_STR(m->text, "line1\nline2\nline3\n");
	msg_free(m);

	/* base64 with junk lines and per-line padding */
	m = mk("text/plain", "base64", "SGVsbG8=\nIHdvcmxk\n-- \nlist footer!\n");
	T_EQ_STR(m->text, "Hello world");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* unknown transfer encoding: taken as is */
	m = mk("text/plain", "x-uuencode", "plain words\n");
	T_EQ_STR(m->text, "plain words\n");
	msg_free(m);
	/* "text" alone is text/plain */
	m = mk("text", NULL, "just text\n");
	T_EQ_STR(m->content_type, "text/plain");
	T_EQ_STR(m->text, "just text\n");
	msg_free(m);
}

static void
test_html(void)
{
	struct msg *m;

	m = mk("text/html; charset=utf-8", NULL,
	    "<html><head><title>T</title><style>p{color:red}</style>"
	    "<script>alert('x')</script></head><body>"
	    "<p>We&nbsp;cannot receive email since this morning &amp; it&#8217;s "
	    "&quot;urgent&quot; &lt;really&gt;</p><div>line one<br>line   two</div>"
	    "<ul><li>first</li><li>second</li></ul>"
	    "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"
	    "<blockquote>quoted <b>old</b> text</blockquote><pre>  keep\n   this</pre>"
	    "</body></html>");
	T_EQ_STR(m->text, "We cannot receive email since this morning & it\xe2\x80\x99s "
	    "\"urgent\" <really>\n\nline one\nline two\nfirst\nsecond\na\tb\nc\n"
	    "> quoted old text\n\n  keep\n   this");
	T_CHECK(m->flags & MSG_HTML_ONLY);
	T_CHECK(strstr(m->text, "alert") == NULL && strstr(m->text, "color") == NULL);
	msg_free(m);

	/* charset from <meta> when the MIME header has none */
	m = mk("text/html", NULL, "<html><head><meta charset=\"koi8-r\"></head><body>"
	    "\xf3\xd2\xcf\xde\xce\xcf</body></html>");
	T_EQ_STR(m->text, "Срочно");
	msg_free(m);
	m = mk("text/html", "quoted-printable", "<meta http-equiv=3D\"Content-Type\" "
	    "content=3D\"text/html; charset=3Dwindows-1251\"><p>=CD=E5 =F0=E0=E1=EE=F2=E0=E5=F2</p>");
	T_EQ_STR(m->text, "Не работает");
	msg_free(m);

	/* garbage HTML */
	m = mk("text/html", NULL, "<<<>>><p <b>x</i></table>&#0;&#xd800;&bogus; y");
	T_CHECK(m->flags & MSG_HTML_ONLY);
	T_CONTAINS(m->text, "y");
	msg_free(m);
	m = mk("text/html", NULL, "");
	T_CHECK(m->flags & MSG_NO_TEXT);
	T_EQ_STR(m->text, "");
	msg_free(m);
	/* start tags with many attributes (libxml2 compares each with all
	 * before it): past 64 they are blanked, and the text reads as before,
	 * in script contents, after a DOCTYPE with quoted '>', past '>' in a
	 * blanked value */
	{
		static const char *const docs[][2] = {
			{ "<p>before</p><p ATTRS last='x>y'>inside</p><p>after</p>",
			  "before\n\ninside\n\nafter" },
			{ "<script><p ATTRS></script><p>after</p>", "after" },
			{ "<p>x</p><script></p><b ATTRS>bold</b></script><p>tail</p>", "x\n\ntail" },
			{ "<!DOCTYPE html SYSTEM \"a><p q='\"><div ATTRS>in div</div>", "in div" },
			{ "<p 1 2 3 ATTRS 4 5 6>bogus</p>", "bogus" },
		};
		struct buf b, attrs;

		buf_init(&b, 4 * 1024 * 1024);
		buf_init(&attrs, 4 * 1024 * 1024);
		for (int i = 0; i < 100; i++)
			buf_printf(&attrs, " a%d=\"%d\"", i, i);
		for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
			const char *at = strstr(docs[i][0], "ATTRS");

			buf_reset(&b);
			buf_append_str(&b, "Content-Type: text/html; charset=utf-8\n\n");
			buf_append(&b, docs[i][0], (size_t)(at - docs[i][0]));
			buf_append_str(&b, buf_str(&attrs));
			buf_append_str(&b, at + 5);
			m = parse_n(b.data, b.len, 65536);
			T_EQ_STR(m->text, docs[i][1]);
			T_CHECK(!(m->flags & MSG_TRUNCATED));
			msg_free(m);
		}
		/* one tag of 30000 attributes: 1 ms, not 0.9 s */
		buf_reset(&b);
		buf_append_str(&b, "Content-Type: text/html\n\n<p>mail is down</p><p");
		for (int i = 0; i < 30000; i++)
			buf_printf(&b, " a%d=%d", i, i);
		buf_append_str(&b, ">end</p>");
		m = parse_n(b.data, b.len, 65536);
		T_EQ_STR(m->text, "mail is down\n\nend");
		msg_free(m);
		buf_free(&attrs);
		buf_free(&b);
	}
	/* deep nesting: no recursion trouble */
	{
		char *b = malloc(200000), *p = b;
		int i;

		for (i = 0; i < 20000; i++) {
			memcpy(p, "<div>", 5);
			p += 5;
		}
		memcpy(p, "deep", 5);
		m = msg_parse(b, strlen(b), 4096);
		check_invariants(m, 4096);
		msg_free(m);
		free(b);
	}
}

static void
test_structure(void)
{
	struct msg *m;

	/* alternative: text/plain preferred even when HTML comes first */
	m = parse("Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
	    "--b1\nContent-Type: text/html\n\n<p>html version</p>\n"
	    "--b1\nContent-Type: text/plain\n\nplain version\n--b1--\n", 65536);
	T_EQ_STR(m->text, "plain version");
	T_CHECK(!(m->flags & MSG_HTML_ONLY));
	T_EQ_STR(m->content_type, "multipart/alternative");
	T_EQ_INT(m->flags, 0);
	msg_free(m);

	/* attachments skipped: pdf, text with disposition or filename */
	m = parse("Content-Type: multipart/mixed; boundary=XX\n\n"
	    "--XX\nContent-Type: application/pdf; name=\"a.pdf\"\n"
	    "Content-Transfer-Encoding: base64\nContent-Disposition: attachment\n\n"
	    "JVBERi0xLjQKU0VDUkVUUERG\n"
	    "--XX\nContent-Type: text/plain\nContent-Disposition: attachment\n\nattached log\n"
	    "--XX\nContent-Type: text/plain; name=notes.txt\n\nnamed file\n"
	    "--XX\nContent-Type: text/plain\nContent-Disposition: inline; filename*=utf-8''x.txt\n\nfile2\n"
	    "--XX\nContent-Type: text/plain\nContent-Disposition: inline\n\nthe real words\n"
	    "--XX--\n", 65536);
	T_EQ_STR(m->text, "the real words");
	T_CHECK(strstr(m->text, "PDF") == NULL && strstr(m->text, "SECRET") == NULL);
	msg_free(m);

	/* only an attachment: no text */
	m = parse("Content-Type: multipart/mixed; boundary=XX\n\n"
	    "--XX\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
	    "JVBERi0xLjQK\n--XX--\n", 65536);
	T_CHECK(m->flags & MSG_NO_TEXT);
	T_EQ_STR(m->text, "");
	msg_free(m);

	/* nested mixed > alternative > related > plain, CRLF */
	m = parse("Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
	    "preamble\r\n--o\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
	    "--a\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n"
	    "--r\r\nContent-Type: text/html\r\n\r\n<b>inner html</b>\r\n"
	    "--r\r\nContent-Type: image/png\r\n\r\nPNG\r\n--r--\r\n"
	    "--a\r\nContent-Type: multipart/related; boundary=\"r2\"\r\n\r\n"
	    "--r2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nдеревья\r\nвнутри\r\n"
	    "--r2--\r\n--a--\r\n--o\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--o--\r\n", 65536);
	T_EQ_STR(m->text, "деревья\nвнутри");
	msg_free(m);

	/* nested HTML only */
	m = parse("Content-Type: multipart/mixed; boundary=\"o\"\n\n"
	    "--o\nContent-Type: multipart/related; boundary=\"r\"\n\n"
	    "--r\nContent-Type: text/html\n\n<b>inner html</b>\n--r--\n--o--\n", 65536);
	T_EQ_STR(m->text, "inner html");
	T_CHECK(m->flags & MSG_HTML_ONLY);
	msg_free(m);

	/* unquoted boundary with '=' and a boundary that prefixes another */
	m = parse("Content-Type: multipart/mixed; boundary=----=_Part_1\n\n"
	    "------=_Part_1\nContent-Type: multipart/alternative; boundary=\"----=_Part_1x\"\n\n"
	    "------=_Part_1x\nContent-Type: text/plain\n\nprefix ok\n------=_Part_1x--\n"
	    "------=_Part_1--\n", 65536);
	T_EQ_STR(m->text, "prefix ok");
	T_EQ_INT(m->flags, 0);
	msg_free(m);

	/* a part with no headers and no blank line */
	m = parse("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno headers here\n--b--\n", 65536);
	T_EQ_STR(m->text, "no headers here");
	msg_free(m);

	/* boundary declared but never used: the body is the text */
	m = parse("Content-Type: multipart/mixed; boundary=nope\n\nJust some words.\n", 65536);
	T_EQ_STR(m->text, "Just some words.\n");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* no boundary parameter, delimiter guessed from the body */
	m = parse("Content-Type: multipart/mixed\n\n--guess\nContent-Type: text/plain\n\n"
	    "guessed part\n--guess--\n", 65536);
	T_EQ_STR(m->text, "guessed part");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* the libetpan-crashing boundary */
	m = parse("Content-Type: multipart/mixed; boundary=\"\\\"\"\n\n--\"\n\nquote boundary\n--\"--\n", 65536);
	T_EQ_STR(m->text, "quote boundary");
	msg_free(m);
	m = parse("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nempty\n", 65536);
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);

	/* message/rfc822: skipped when there is other text ... */
	m = parse("Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: message/rfc822\n\nSubject: fwd\nContent-Type: text/plain\n\n"
	    "forwarded words\n--b\nContent-Type: text/plain\n\nmy own words\n--b--\n", 65536);
	T_EQ_STR(m->text, "my own words");
	msg_free(m);
	/* ... and read when it is the only content */
	m = parse("Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: message/rfc822\n\nSubject: fwd\n"
	    "Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: base64\n\n"
	    "89LP3s7P\n--b--\n", 65536);
	T_EQ_STR(m->text, "Срочно");
	msg_free(m);
	m = parse("Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n", 65536);
	T_EQ_STR(m->text, "inner text\n");
	T_EQ_STR(m->subject, "");
	msg_free(m);
	/* a forwarded bounce is not a report */
	m = parse("Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\n\nwhy did this bounce?\n"
	    "--b\nContent-Type: message/rfc822\n\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
	    "--r\nContent-Type: text/plain\n\nbounce\n--r\nContent-Type: message/delivery-status\n\n"
	    "Action: failed\n--r--\n--b--\n", 65536);
	T_EQ_STR(m->text, "why did this bounce?");
	T_CHECK(!(m->flags & MSG_REPORT));
	msg_free(m);

	/* digest: parts default to message/rfc822 */
	m = parse("Content-Type: multipart/digest; boundary=d\n\n"
	    "--d\n\nSubject: one\n\ndigest body\n--d--\n", 65536);
	T_EQ_STR(m->text, "digest body");
	msg_free(m);

	/* depth limit */
	{
		size_t cap = 64 * 20000 + 64, n = 0;
		char *b = malloc(cap);
		int i;
		double t0;

		for (i = 0; i < 20000; i++)
			n += (size_t)snprintf(b + n, cap - n,
			    "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i % 10, i % 10);
		t0 = now();
		m = parse_n(b, n, 65536);
		T_CHECK(now() - t0 < 10.0);
		T_CHECK(m->flags & MSG_MALFORMED);
		msg_free(m);
		n = 0;
		for (i = 0; i < 20000; i++)
			n += (size_t)snprintf(b + n, cap - n, "Content-Type: message/rfc822\n\n");
		n += (size_t)snprintf(b + n, cap - n, "deep text\n");
		t0 = now();
		m = parse_n(b, n, 65536);
		T_CHECK(now() - t0 < 10.0);
		msg_free(m);
		free(b);
	}
}

static void
test_report(void)
{
	struct msg *m;

	m = parse("From: MAILER-DAEMON@mx.client.test\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n"
	    "--r\nContent-Type: text/plain\n\nDelivery failed.\n"
	    "--r\nContent-Type: message/delivery-status\n\nAction: failed\n--r--\n", 65536);
	T_CHECK(m->flags & MSG_REPORT);
	T_EQ_STR(m->text, "Delivery failed.");
	T_EQ_STR(m->from_address, "mailer-daemon@mx.client.test");
	msg_free(m);
	m = parse("Content-Type: multipart/mixed; boundary=\"r\"\n\n"
	    "--r\nContent-Type: text/plain\n\nx\n"
	    "--r\nContent-Type: message/delivery-status\n\nAction: failed\n--r--\n", 65536);
	T_CHECK(m->flags & MSG_REPORT);
	msg_free(m);
	m = parse("Content-Type: text/plain\n\nnot a report\n", 65536);
	T_CHECK(!(m->flags & MSG_REPORT));
	msg_free(m);
}

static void
test_truncation(void)
{
	static const char full[] =
	    "From: Ivan <ivan@client.test>\r\n"
	    "Subject: =?utf-8?B?0KHRgNC+0YfQvdC+?=\r\n"
	    "Content-Type: multipart/mixed; boundary=\"==b==\"\r\n\r\n"
	    "--==b==\r\nContent-Type: multipart/alternative; boundary=\"==a==\"\r\n\r\n"
	    "--==a==\r\nContent-Type: text/plain; charset=koi8-r\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "=F3=D2=CF=DE=CE=CF! mail is down, please help\r\n"
	    "--==a==\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "PHA+0KHRgNC+0YfQvdC+ISBtYWlsIGlzIGRvd248L3A+\r\n"
	    "--==a==--\r\n"
	    "--==b==\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    "JVBERi0xLjQK\r\n--==b==--\r\n";
	const char *words = strstr(full, " mail is down");
	size_t len = strlen(full), cut, bad = 0, missing = 0;
	size_t need = (size_t)(words - full) + strlen(" mail is down");
	struct msg *m;

	for (cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut + 1);	/* exact size: ASan sees overreads */

		memcpy(copy, full, cut);
		m = msg_parse(copy, cut, 65536);
		check_invariants(m, 65536);
		if (m->text == NULL)
			bad++;
		if (cut >= need && strstr(m->text, "mail is down") == NULL)
			missing++;
		msg_free(m);
		free(copy);
	}
	T_EQ_INT(bad, 0);
	T_EQ_INT(missing, 0);
	m = parse_n(full, len, 65536);
	T_EQ_STR(m->text, "Срочно! mail is down, please help");
	T_EQ_STR(m->subject, "Срочно");
	T_EQ_INT(m->flags, 0);
	msg_free(m);
	/* missing closing boundary */
	m = parse_n(full, need + 10, 65536);
	T_CONTAINS(m->text, "Срочно! mail is down");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* HTML only, cut inside base64 */
	m = parse("Content-Type: multipart/alternative; boundary=a\n\n--a\n"
	    "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n"
	    "PHA+0KHRgNC+0YfQvdC+ISBtYWlsIGlzIGRv", 65536);
	T_CONTAINS(m->text, "Срочно! mail is");
	msg_free(m);
}

static void
test_odd_input(void)
{
	struct msg *m;
	size_t i;

	/* no blank line between header and body */
	m = parse("From: a@client.test\nSubject: hi there\nHello, the body starts here.\nSecond line\n", 65536);
	T_EQ_STR(m->subject, "hi there");
	T_EQ_STR(m->text, "Hello, the body starts here.\nSecond line\n");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* header only */
	m = parse("From: a@client.test\nSubject: only headers\n", 65536);
	T_EQ_STR(m->subject, "only headers");
	T_EQ_STR(m->text, "");
	T_CHECK(m->flags & MSG_NO_TEXT);
	T_EQ_INT(m->header_count, 2);
	msg_free(m);
	m = parse("Subject: cut in the middle of a fold\n ", 65536);
	T_EQ_STR(m->subject, "cut in the middle of a fold");
	msg_free(m);
	/* empty and NULL input */
	m = parse_n("", 0, 65536);
	T_EQ_STR(m->text, "");
	T_EQ_STR(m->subject, "");
	T_EQ_STR(m->content_type, "text/plain");
	T_CHECK(m->flags & MSG_NO_TEXT);
	T_EQ_INT(m->header_count, 0);
	T_EQ_INT(m->reference_count, 0);
	msg_free(m);
	m = msg_parse(NULL, 100, 10);
	check_invariants(m, 10);
	msg_free(m);
	msg_free(NULL);
	/* mbox From_ line, continuation first, name with space before colon */
	m = parse("From someone@client.test Mon Mar  3 09:12:41 2025\n"
	    "Subject : spaced\n\nbody\n", 65536);
	T_EQ_STR(m->subject, "spaced");
	T_EQ_STR(m->text, "body\n");
	msg_free(m);
	m = parse("  leading continuation\nSubject: x\n\nbody\n", 65536);
	T_EQ_STR(m->subject, "x");
	T_CHECK(m->flags & MSG_MALFORMED);
	msg_free(m);
	/* NUL bytes */
	{
		static const char nul[] = "Subject: a\0b\nX-Y: 1\n\nline\0one\n";

		m = parse_n(nul, sizeof(nul) - 1, 65536);
		T_EQ_STR(m->subject, "a b");
		T_EQ_STR(m->text, "line one\n");
		msg_free(m);
	}
	/* NULs at the ends of a value become spaces, which are trimmed too
	 * (found by fuzz_msg: the round trip through encode/decode broke) */
	{
		static const char nul2[] = "Subject: \0\0=?utf-8?q?x?= \0\nFrom : a@client.test\n\nz";
		char *e, *d;

		m = parse_n(nul2, sizeof(nul2) - 1, 65536);
		T_EQ_STR(m->subject, "x");
		T_EQ_STR(msg_header_raw(m, "subject"), "=?utf-8?q?x?=");
		T_EQ_STR(m->from_address, "a@client.test");	/* "From :" is no mbox line */
		e = msg_encode_header_value(m->subject, 9);
		d = msg_decode_header_value(e);
		T_EQ_STR(d, m->subject);
		free(e);
		free(d);
		msg_free(m);
	}
	/* deeply nested comments in From stay away from libetpan's recursion */
	{
		char *f = malloc(5000);

		memcpy(f, "From: ", 6);
		memset(f + 6, '(', 3000);
		memcpy(f + 3006, "a@client.test\n\nx", sizeof("a@client.test\n\nx"));
		m = parse(f, 65536);
		T_EQ_STR(m->from_address, "a@client.test");
		msg_free(m);
		free(f);
	}
	/* binary garbage, deterministic */
	{
		unsigned char *g = malloc(1 << 16);
		uint32_t x = 12345;
		int round;

		for (round = 0; round < 50; round++) {
			for (i = 0; i < (1 << 16); i++) {
				x = x * 1103515245u + 12345u;
				g[i] = (unsigned char)(x >> 16);
				if (round % 2 && g[i] < 0x40)	/* more structure */
					g[i] = "\n\n-:=?;\"<>\r BbQq"[g[i] % 16];
			}
			m = msg_parse((const char *)g, 1 << 16, 4096);
			check_invariants(m, 4096);
			msg_free(m);
		}
		free(g);
	}
	/* max_text cut on a character boundary */
	for (i = 0; i < 8; i++) {
		m = msg_parse("Content-Type: text/plain; charset=utf-8\n\nжжжжжжж", 47, i);
		check_invariants(m, i);
		T_EQ_INT(m->text_len, i & ~(size_t)1);
		T_CHECK(i >= 6 || (m->flags & MSG_TRUNCATED));
		msg_free(m);
	}
}

static void
test_big(void)
{
	struct msg *m;
	size_t n = 5 * 1024 * 1024, i;
	char *b = malloc(n + 1);
	double t0;

	memcpy(b, "Subject: big\nContent-Type: text/plain; charset=utf-8\n\n", 54);
	for (i = 54; i < n; i++)
		b[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
	b[n] = '\0';
	t0 = now();
	m = parse_n(b, n, 64 * 1024);
	T_CHECK(now() - t0 < 10.0);
	T_EQ_INT(m->text_len, 64 * 1024);
	T_CHECK(m->flags & MSG_TRUNCATED);
	msg_free(m);

	/* 5 MB base64 and HTML bodies are capped too */
	memcpy(b, "Subject: big\nContent-Transfer-Encoding: base64\n\n", 48);
	for (i = 48; i < n; i++)
		b[i] = (i % 77 == 76) ? '\n' : "QUJD"[i % 4];
	t0 = now();
	m = parse_n(b, n, 64 * 1024);
	T_CHECK(now() - t0 < 10.0);
	T_EQ_INT(m->text_len, 64 * 1024);
	T_CHECK(m->flags & MSG_TRUNCATED);
	msg_free(m);
	memcpy(b, "Content-Type: text/html\n\n", 25);
	for (i = 25; i + 8 < n; i += 8)
		memcpy(b + i, "<b>x</b>", 8);
	t0 = now();
	m = parse_n(b, i, 64 * 1024);
	T_CHECK(now() - t0 < 10.0);
	T_CHECK(m->flags & MSG_TRUNCATED);
	msg_free(m);

	/* a very long header line: capped at 64 KiB */
	memcpy(b, "Subject: ", 9);
	for (i = 9; i < 200000; i++)
		b[i] = (i % 3) ? 'x' : ' ';
	memcpy(b + i, "\n\nbody\n", 8);
	m = parse(b, 65536);
	T_EQ_INT(strlen(m->subject), 64 * 1024);
	T_CHECK(m->flags & MSG_TRUNCATED);
	T_EQ_STR(m->text, "body\n");
	msg_free(m);
	/* long encoded Subject */
	{
		size_t k = 0;

		for (i = 0; i < 2000; i++) {
			memcpy(b + k, i ? " =?utf-8?B?0KHRgNC+0YfQvdC+?=" : "Subject: =?utf-8?B?0KHRgNC+0YfQvdC+?=",
			    i ? 29 : 37);
			k += i ? 29 : 37;
		}
		memcpy(b + k, "\n\nx", 4);
		m = parse(b, 65536);
		T_EQ_INT(strlen(m->subject), 2000 * 12);
		msg_free(m);
	}
	/* many "=?" without an end: still linear */
	memcpy(b, "Subject: ", 9);
	for (i = 9; i < 9 + 60000; i += 6)
		memcpy(b + i, "=?a?q?", 6);
	memcpy(b + i, "\n\nx", 4);
	t0 = now();
	m = parse(b, 65536);
	T_CHECK(now() - t0 < 10.0);
	msg_free(m);
	/* more than 1000 headers */
	{
		size_t k = 0;

		for (i = 0; i < 1500; i++)
			k += (size_t)snprintf(b + k, n - k, "X-H%zu: v\n", i);
		k += (size_t)snprintf(b + k, n - k, "\nbody\n");
		m = parse_n(b, k, 65536);
		T_EQ_INT(m->header_count, 1000);
		T_CHECK(m->flags & MSG_TRUNCATED);
		T_EQ_STR(m->text, "body\n");
		msg_free(m);
	}
	free(b);
}

static void
test_ids_and_from(void)
{
	struct msg *m;
	char *b;
	size_t i, k;

	m = parse("Message-ID: <abc.123@client.test>\n"
	    "In-Reply-To: Your message of Monday <orig@example.com> (comment)\n"
	    "References: <r1@x.test>\n  <r2@x.test>\t<r3@x.test>\n\nx", 65536);
	T_EQ_STR(m->message_id, "abc.123@client.test");
	T_EQ_STR(m->in_reply_to, "orig@example.com");
	T_EQ_INT(m->reference_count, 3);
	if (m->reference_count == 3) {
		T_EQ_STR(m->references[0], "r1@x.test");
		T_EQ_STR(m->references[2], "r3@x.test");
	}
	msg_free(m);
	m = parse("Message-ID: bare-id@client.test\nReferences: a@x b@y\n\nx", 65536);
	T_EQ_STR(m->message_id, "bare-id@client.test");
	T_EQ_INT(m->reference_count, 1);
	msg_free(m);
	m = parse("Message-ID: <>\nIn-Reply-To: <unterminated\n\nx", 65536);
	T_EQ_STR(m->message_id, "");
	T_EQ_STR(m->in_reply_to, "");
	msg_free(m);
	/* many references: root and newest kept */
	b = malloc(100000);
	k = (size_t)snprintf(b, 100000, "References:");
	for (i = 0; i < 1000; i++)
		k += (size_t)snprintf(b + k, 100000 - k, " <m%zu@x>", i);
	snprintf(b + k, 100000 - k, "\n\nx");
	m = parse(b, 65536);
	T_EQ_INT(m->reference_count, 256);
	T_EQ_STR(m->references[0], "m0@x");
	T_EQ_STR(m->references[1], "m745@x");
	T_EQ_STR(m->references[255], "m999@x");
	msg_free(m);
	free(b);

	/* From variants */
	m = parse("From: =?koi8-r?B?89LP3s7P?= <Ivan.Petrov@Client.TEST>\n\nx", 65536);
	T_EQ_STR(m->from_address, "ivan.petrov@client.test");
	T_EQ_STR(m->from_name, "Срочно");
	msg_free(m);
	m = parse("From: \"=?utf-8?Q?J=C3=BCrgen_M=C3=BCller?=\" <j@client.test>\n\nx", 65536);
	T_EQ_STR(m->from_name, "Jürgen Müller");
	msg_free(m);
	m = parse("From: \"Petrov, Ivan\" <ivan@client.test>\n\nx", 65536);
	T_EQ_STR(m->from_name, "Petrov, Ivan");
	T_EQ_STR(m->from_address, "ivan@client.test");
	msg_free(m);
	m = parse("From: ivan@client.test (Ivan Petrov)\n\nx", 65536);
	T_EQ_STR(m->from_address, "ivan@client.test");
	T_EQ_STR(m->from_name, "Ivan Petrov");
	msg_free(m);
	m = parse("From: IVAN@client.test\n\nx", 65536);
	T_EQ_STR(m->from_address, "ivan@client.test");
	T_EQ_STR(m->from_name, "");
	msg_free(m);
	m = parse("From: Ivan Petrov <ivan@client.test\n\nx", 65536);	/* no '>' */
	T_EQ_STR(m->from_address, "ivan@client.test");
	msg_free(m);
	m = parse("From: Ivan [Support] <ivan@client.test>\n\nx", 65536);
	T_EQ_STR(m->from_address, "ivan@client.test");
	T_EQ_STR(m->from_name, "Ivan [Support]");
	msg_free(m);
	m = parse("From: \xc8\xe2\xe0\xed \xcf\xe5\xf2\xf0\xee\xe2 <ivan@client.test>\n\nx", 65536);
	T_EQ_STR(m->from_name, "Иван Петров");
	T_EQ_STR(m->from_address, "ivan@client.test");
	msg_free(m);
	m = parse("From: Mail Delivery Subsystem <MAILER-DAEMON>\n\nx", 65536);
	T_EQ_STR(m->from_address, "mailer-daemon");
	msg_free(m);
	m = parse("From: undisclosed-recipients:;\n\nx", 65536);
	T_EQ_STR(m->from_address, "");
	msg_free(m);
	m = parse("From: <mailto:Ivan@client.test>\n\nx", 65536);
	T_EQ_STR(m->from_address, "ivan@client.test");
	msg_free(m);
	m = parse("From: first@client.test\nFrom: second@client.test\n\nx", 65536);
	T_EQ_STR(m->from_address, "first@client.test");
	msg_free(m);

	/* header lookups */
	m = parse("Auto-Submitted: auto-replied (vacation)\nX-Subj: =?utf-8?q?a?=\n\nx", 65536);
	T_EQ_STR(msg_header_raw(m, "auto-submitted"), "auto-replied (vacation)");
	T_EQ_STR(msg_header(m, "X-SUBJ"), "a");
	T_EQ_STR(msg_header_raw(m, "x-subj"), "=?utf-8?q?a?=");
	T_CHECK(msg_header(m, "missing") == NULL);
	T_CHECK(msg_header(NULL, "x") == NULL);
	msg_free(m);
}

/* Decodes every encoded-word of an encoded value on its own: each must be
 * valid UTF-8 (no character split between words). */
static int
words_whole(const char *enc)
{
	const char *p = enc, *e;
	char word[128], *d;
	size_t n;
	int ok = 1;

	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		if ((e = strstr(p + 10, "?=")) == NULL)
			return 0;
		n = (size_t)(e + 2 - p);
		if (n >= sizeof(word) || n > 75)
			return 0;
		memcpy(word, p, n);
		word[n] = '\0';
		d = msg_decode_header_value(word);
		ok &= valid_utf8(d) && strstr(d, "\xef\xbf\xbd") == NULL &&
		    strcmp(d, word) != 0;
		free(d);
		p = e + 2;
	}
	return ok;
}

static size_t
longest_line(const char *s, size_t first)
{
	size_t max = 0, cur = first;

	for (; *s; s++) {
		if (*s == '\n') {
			if (cur > max)
				max = cur;
			cur = 0;
		} else
			cur++;
	}
	return cur > max ? cur : max;
}

/* want: the expected decoding when it is not the input itself (input with
 * CR/LF or invalid UTF-8; decoded values are also trimmed). */
static void
roundtrip(const char *in, const char *want)
{
	char *e = msg_encode_header_value(in, 9);
	char *d = msg_decode_header_value(e);

	T_EQ_STR(d, want ? want : in);
	if (want == NULL)
		T_CHECK(words_whole(e));
	T_CHECK(strchr(e, '\r') == NULL);
	free(e);
	free(d);
}

/* Appends s at big + len (big has room); returns the new length. */
static size_t
cat(char *big, size_t len, const char *s)
{
	size_t n = strlen(s);

	memcpy(big + len, s, n + 1);
	return len + n;
}

static void
test_encode(void)
{
	char *e, *big;
	size_t i, len;

	e = msg_encode_header_value("Hello world", 9);
	T_EQ_STR(e, "Hello world");
	free(e);
	e = msg_encode_header_value("Срочно", 9);
	T_EQ_STR(e, "=?UTF-8?B?0KHRgNC+0YfQvdC+?=");
	free(e);
	e = msg_encode_header_value("", 9);
	T_EQ_STR(e, "");
	free(e);
	e = msg_encode_header_value("a\r\nb\0", 9);
	T_EQ_STR(e, "a  b");
	free(e);
	e = msg_encode_header_value("Re: =?utf-8?q?x?=", 9);	/* would be misread */
	T_CHECK(strncmp(e, "=?UTF-8?B?", 10) == 0);
	free(e);

	roundtrip("Срочно! Не отправляются письма, клиенты не получают счета", NULL);
	roundtrip("Терміново! Не надсилаються листи 🔥🔥🔥 ✉️", NULL);
	roundtrip("Re: [HG-1042] 紧急：无法发送邮件", NULL);
	roundtrip("line\nbreak", "line break");
	roundtrip("mixed ascii and кириллица and emoji 😀 at the end", NULL);
	roundtrip("Re: =?utf-8?q?x?=", NULL);

	/* long texts with spaces: no line over 78, every word <= 75 */
	big = malloc(20000);
	for (i = 0, len = 0; i < 300; i++)
		len = cat(big, len, i % 3 ? "слово " : "word 😀 ");
	big[len - 1] = '\0';	/* decoded values are trimmed */
	e = msg_encode_header_value(big, 9);
	T_CHECK(longest_line(e, 9) <= 78);
	T_CHECK(words_whole(e));
	free(e);
	roundtrip(big, NULL);
	for (i = 0, len = 0; i < 300; i++)
		len = cat(big, len, "plain ascii words ");
	big[len - 1] = '\0';
	e = msg_encode_header_value(big, 9);
	T_CHECK(longest_line(e, 9) <= 78);
	T_CHECK(strstr(e, "=?") == NULL);
	free(e);
	roundtrip(big, NULL);
	/* one enormous ASCII word: encoded so no line passes 998 */
	memset(big, 'x', 5000);
	big[5000] = '\0';
	e = msg_encode_header_value(big, 9);
	T_CHECK(longest_line(e, 9) <= 998);
	free(e);
	roundtrip(big, NULL);
	/* a large first_line_used still gives whole words */
	e = msg_encode_header_value("Срочно Срочно Срочно Срочно Срочно Срочно", 70);
	T_CHECK(words_whole(e));
	free(e);
	/* invalid UTF-8 in: U+FFFD out */
	roundtrip("bad \xff byte", "bad \xef\xbf\xbd byte");
	free(big);
}

static void
test_charset_api(void)
{
	size_t n = 0;
	char *s;

	s = msg_charset_to_utf8("koi8-r", "\xf3\xd2\xcf\xde\xce\xcf", 6, &n);
	T_EQ_STR(s, "Срочно");
	T_EQ_INT(n, strlen("Срочно"));
	free(s);
	s = msg_charset_to_utf8("UTF-8", "a\xffz", 3, &n);
	T_EQ_STR(s, "a\xef\xbf\xbdz");
	free(s);
	s = msg_charset_to_utf8("utf8", "ok", 2, NULL);
	T_EQ_STR(s, "ok");
	free(s);
	s = msg_charset_to_utf8("x-definitely-not", "abc", 3, &n);
	T_CHECK(s == NULL);
	s = msg_charset_to_utf8("../../etc/passwd", "abc", 3, &n);
	T_CHECK(s == NULL);
	s = msg_charset_to_utf8("windows-1251", "\xcd\xe5\x00\xf2", 4, &n);
	T_EQ_INT(n, 7);
	free(s);
	s = msg_charset_to_utf8("iso-2022-jp", "\x1b$B$3$s\x1b(B", 10, &n);
	T_EQ_STR(s, "こん");
	free(s);
	s = msg_charset_to_utf8("shift_jis", "\x82\xa0\x82", 3, &n);	/* cut mid-char */
	T_EQ_STR(s, "あ\xef\xbf\xbd");
	free(s);
}

static void
test_sample_files(void)
{
	struct msg *m;

	if ((m = parse_file("en-outgoing-urgent.eml")) != NULL) {
		T_EQ_STR(m->subject, "URGENT: cannot send email");
		T_EQ_STR(m->from_address, "mark.johnson@client.test");
		T_CONTAINS(m->text, "none of our staff can send email");
		T_EQ_INT(m->flags, 0);
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("ru-koi8-qp.eml")) != NULL) {
		T_EQ_STR(m->subject, "Срочно! Не отправляются письма");
		T_EQ_STR(m->from_name, "Иван Петров");
		T_CONTAINS(m->text, "Срочно! Не отправляются письма, клиенты не получают счета.");
		T_CONTAINS(m->text, "выдаёт ошибку");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("ru-cp1251-b64.eml")) != NULL) {
		T_EQ_STR(m->subject, "Не приходит почта");
		T_CONTAINS(m->text, "не приходят входящие письма");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("uk-utf8-b64.eml")) != NULL) {
		T_EQ_STR(m->subject, "Терміново! Не надсилаються листи");
		T_CONTAINS(m->text, "Клієнти не отримують рахунки.");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("uk-utf8-qp.eml")) != NULL) {
		T_EQ_STR(m->subject, "Як налаштувати переадресацію?");
		T_EQ_STR(m->from_name, "Юрій Шевченко");
		T_CONTAINS(m->text, "Це не терміново.");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("html-only.eml")) != NULL) {
		T_CHECK(m->flags & MSG_HTML_ONLY);
		T_CONTAINS(m->text, "We cannot receive email since this morning.");
		T_CONTAINS(m->text, "\"mailbox unavailable\" & nothing");
		T_CHECK(strstr(m->text, "do not show") == NULL);
		T_CHECK(strstr(m->text, "margin") == NULL);
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("broken-mime.eml")) != NULL) {
		T_CHECK(m->flags & MSG_MALFORMED);
		T_CONTAINS(m->text, "quota warning");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("bounce.eml")) != NULL) {
		T_CHECK(m->flags & MSG_REPORT);
		T_CONTAINS(m->text, "could not");
		T_EQ_STR(m->from_address, "mailer-daemon@mx.client.test");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("auto-reply.eml")) != NULL) {
		T_EQ_STR(msg_header_raw(m, "Auto-Submitted"), "auto-replied");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("list.eml")) != NULL) {
		T_CONTAINS(msg_header_raw(m, "List-Id"), "news.lists.client.test");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("fr-outgoing.eml")) != NULL) {
		T_EQ_STR(m->subject, "Urgent : impossible d'envoyer des courriels");
		T_CONTAINS(m->text, "« échec de l'authentification SMTP »");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("de-outgoing.eml")) != NULL) {
		T_EQ_STR(m->from_name, "Jürgen Müller");
		T_CONTAINS(m->text, "Postausgang hängen");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("thanks.eml")) != NULL) {
		T_EQ_STR(m->in_reply_to, "hg-1042.2@example.com");
		T_EQ_INT(m->reference_count, 2);
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("reply-quoted.eml")) != NULL) {
		T_CONTAINS(m->text, "> On Mon, 3 Mar 2025 at 09:12");
		T_CONTAINS(m->text, ">> URGENT!!!");
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("attachment-pdf.eml")) != NULL) {
		T_CONTAINS(m->text, "attached invoice never reached them");
		T_CHECK(strstr(m->text, "JVBER") == NULL);
		T_EQ_INT(m->flags, 0);
		msg_free(m);
	} else
		T_CHECK(0);
	if ((m = parse_file("howto.eml")) != NULL) {
		T_EQ_STR(m->subject, "How do I add an alias?");
		msg_free(m);
	} else
		T_CHECK(0);
}

/* A generated message with a large base64 attachment (the milter's
 * MaxBodyScan cuts such messages short). */
static void
test_attachment_big(void)
{
	size_t n = 3 * 1024 * 1024, k, i, cut;
	char *b = malloc(n + 4096);
	struct msg *m;

	k = (size_t)snprintf(b, 4096, "From: Mark <mark@client.test>\n"
	    "Subject: log files attached\nContent-Type: multipart/mixed; boundary=\"big\"\n\n"
	    "--big\nContent-Type: text/plain; charset=utf-8\n\nPlease see the attached logs.\n"
	    "--big\nContent-Type: application/octet-stream; name=\"logs.tar.gz\"\n"
	    "Content-Transfer-Encoding: base64\nContent-Disposition: attachment\n\n");
	for (i = 0; i < n; i++)
		b[k++] = (i % 77 == 76) ? '\n' : "H4sIAAAAAAAAA+"[i % 14];
	k += (size_t)snprintf(b + k, 4096, "\n--big--\n");
	m = parse_n(b, k, 65536);
	T_EQ_STR(m->text, "Please see the attached logs.");
	T_EQ_INT(m->flags, 0);
	msg_free(m);
	for (cut = 300; cut < k; cut += k / 7) {
		m = parse_n(b, cut, 65536);
		T_EQ_STR(m->text, "Please see the attached logs.");
		msg_free(m);
	}
	free(b);
}

/* libmilter runs one thread per connection: parse concurrently (HTML
 * first, so libxml2's one-time initialisation races too). */
static const char thread_msg[] =
    "Subject: =?koi8-r?B?89LP3s7P?=\nContent-Type: multipart/alternative; boundary=b\n\n"
    "--b\nContent-Type: text/html; charset=windows-1251\n\n<p>\xcd\xe5 &amp; ok</p>\n--b--\n";

static void *
thread_main(void *arg)
{
	int i, *bad = arg;

	for (i = 0; i < 300; i++) {
		struct msg *m = msg_parse(thread_msg, sizeof(thread_msg) - 1, 4096);

		if (strcmp(m->text, "Не & ok") != 0 || strcmp(m->subject, "Срочно") != 0)
			(*bad)++;
		msg_free(m);
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[4];
	int bad[4] = { 0 }, i;

	for (i = 0; i < 4; i++)
		T_CHECK(pthread_create(&t[i], NULL, thread_main, &bad[i]) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		T_EQ_INT(bad[i], 0);
	}
}

/* ------------------------------------------------------------------ */
/* Work caps: past each the rest is not decoded, and the message is still
 * classified. */

static struct classify_rules *
load_rules(void)
{
	static const char *const dirs[] = { "conf/keywords", "../conf/keywords",
	    "../../conf/keywords", "../../../conf/keywords" };
	struct classify_rules *r = NULL;
	struct buf errors;
	char path[512];
	const char *slash;
	size_t i;

	buf_init(&errors, 64 * 1024);
	if (exe_path != NULL && (slash = strrchr(exe_path, '/')) != NULL) {
		snprintf(path, sizeof(path), "%.*s/../../../conf/keywords",
		    (int)(slash - exe_path), exe_path);
		r = classify_rules_load(path, NULL);
	}
	for (i = 0; r == NULL && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		r = classify_rules_load(dirs[i], i + 1 == sizeof(dirs) / sizeof(dirs[0]) ? &errors : NULL);
	if (r == NULL)
		fprintf(stderr, "conf/keywords: %s", buf_str(&errors));
	buf_free(&errors);
	return r;
}

/* The content urgency and category classify_message() gives m. */
static void
expect_class(const struct classify_rules *rules, const struct msg *m, const char *urgency,
    const char *category)
{
	struct classify_result r;

	T_CHECK(rules != NULL);
	if (rules == NULL)
		return;
	classify_message(rules, m, "client@client.test", &r);
	T_EQ_STR(classify_urgency_name(r.content_urgency), urgency);
	T_EQ_STR(r.category, category);
}

/* n encoded-words in X-Words, then the Subject as one more. */
static struct msg *
parse_words(struct buf *b, size_t n)
{
	buf_reset(b);
	buf_append_str(b, "From: Ivan <ivan@client.test>\nX-Words:");
	for (size_t i = 0; i < n; i++)
		buf_append_str(b, " =?utf-8?Q?x?=");
	buf_append_str(b, "\nSubject: =?utf-8?Q?Cannot_send_mail?=\n\n"
	    "Since this morning nothing goes out.\n");
	T_CHECK(!b->truncated);
	return parse_n(b->data, b->len, 65536);
}

/* Multipart: n parts with one text part at index text_at (-1: none), each
 * other part an attachment. */
static struct msg *
parse_parts(struct buf *b, size_t n, size_t text_at)
{
	buf_reset(b);
	buf_append_str(b, "From: Ivan <ivan@client.test>\nSubject: Cannot send mail\n"
	    "Content-Type: multipart/mixed; boundary=b\n\n");
	for (size_t i = 0; i < n; i++)
		buf_append_str(b, i == text_at ?
		    "--b\nContent-Type: text/plain\n\nnothing goes out, we are losing orders\n" :
		    "--b\nContent-Type: application/octet-stream\n\nx\n");
	buf_append_str(b, "--b--\n");
	T_CHECK(!b->truncated);
	return parse_n(b->data, b->len, 65536);
}

/* levels nested multiparts, the text in the innermost. */
static struct msg *
parse_nested(struct buf *b, int levels)
{
	buf_reset(b);
	buf_append_str(b, "From: Ivan <ivan@client.test>\nSubject: Cannot send mail\n");
	for (int i = 0; i < levels; i++)
		buf_printf(b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	buf_append_str(b, "Content-Type: text/plain\n\nnothing goes out, we are losing orders\n");
	for (int i = levels - 1; i >= 0; i--)
		buf_printf(b, "--b%d--\n", i);
	T_CHECK(!b->truncated);
	return parse_n(b->data, b->len, 65536);
}

/* Encoded-words in n distinct charsets (iconv names), then the Subject in
 * one more: KOI8-R. */
static struct msg *
parse_charsets(struct buf *b, size_t n)
{
	size_t k = 0;

	buf_reset(b);
	buf_append_str(b, "From: Ivan <ivan@client.test>\nX-Charsets:");
	for (int v = 2; v <= 16 && k < n; v++)
		for (int sp = 0; sp < 3 && k < n; sp++, k++)	/* ISO-8859-2, ISO8859-2, ISO_8859-2 */
			buf_printf(b, " =?%s%d?Q?a?=", sp == 0 ? "iso-8859-" : sp == 1 ? "iso8859-" :
			    "iso_8859-", v);
	for (int v = 0; v <= 8 && k < n; v++, k++)
		buf_printf(b, " =?windows-125%d?Q?a?=", v);
	for (int v = 0; v <= 8 && k < n; v++, k++)
		buf_printf(b, " =?cp125%d?Q?a?=", v);
	for (int v = 0; v < 6 && k < n; v++, k++)
		buf_printf(b, " =?%s?Q?a?=", (const char *[]){ "cp437", "cp850", "cp852",
		    "cp855", "cp857", "cp860" }[v]);
	T_CHECK(k == n);
	buf_append_str(b, "\nSubject: =?koi8-r?Q?=F3=D2=CF=DE=CE=CF!_cannot_send_mail?=\n\n"
	    "Nothing goes out.\n");
	return parse_n(b->data, b->len, 65536);
}

static void
test_caps(void)
{
	struct classify_rules *rules = load_rules();
	struct buf b;
	struct msg *m;

	buf_init(&b, 4 * 1024 * 1024);

	/* MSG_MAX_ENCODED_WORDS: the Subject is the word past the cap */
	m = parse_words(&b, MSG_MAX_ENCODED_WORDS - 1);
	T_EQ_INT(strlen(msg_header(m, "X-Words")), MSG_MAX_ENCODED_WORDS - 1);
	T_EQ_STR(m->subject, "Cannot send mail");
	T_CHECK(!(m->flags & MSG_TRUNCATED));
	expect_class(rules, m, "P2", "outgoing-mail");
	msg_free(m);
	m = parse_words(&b, MSG_MAX_ENCODED_WORDS);
	T_EQ_INT(strlen(msg_header(m, "X-Words")), MSG_MAX_ENCODED_WORDS);
	T_EQ_STR(m->subject, "=?utf-8?Q?Cannot_send_mail?=");	/* left as it was */
	T_CHECK(m->flags & MSG_TRUNCATED);
	T_EQ_STR(m->text, "Since this morning nothing goes out.\n");
	expect_class(rules, m, "P2", "outgoing-mail");
	msg_free(m);

	/* MSG_MAX_PARTS: a text part past the cap is not read */
	m = parse_parts(&b, MSG_MAX_PARTS, MSG_MAX_PARTS - 1);
	T_EQ_STR(m->text, "nothing goes out, we are losing orders");
	T_CHECK(!(m->flags & (MSG_TRUNCATED | MSG_MALFORMED)));
	expect_class(rules, m, "P1", "outgoing-mail");
	msg_free(m);
	m = parse_parts(&b, MSG_MAX_PARTS + 1, MSG_MAX_PARTS);
	T_EQ_STR(m->text, "");
	T_CHECK(m->flags & MSG_TRUNCATED);
	T_CHECK(m->flags & MSG_NO_TEXT);
	expect_class(rules, m, "P2", "outgoing-mail");	/* the Subject alone */
	msg_free(m);
	/* the cap is per message: 30000 parts cost no more than 1000 */
	m = parse_parts(&b, 30000, 0);
	T_EQ_STR(m->text, "nothing goes out, we are losing orders");
	T_CHECK(m->flags & MSG_TRUNCATED);
	msg_free(m);

	/* MSG_MAX_DEPTH: the top multipart and MSG_MAX_DEPTH - 1 nested ones
	 * are walked, a multipart deeper than that is not */
	m = parse_nested(&b, MSG_MAX_DEPTH);
	T_EQ_STR(m->text, "nothing goes out, we are losing orders");
	T_CHECK(!(m->flags & MSG_MALFORMED));
	expect_class(rules, m, "P1", "outgoing-mail");
	msg_free(m);
	m = parse_nested(&b, MSG_MAX_DEPTH + 1);
	T_EQ_STR(m->text, "");
	T_CHECK(m->flags & MSG_MALFORMED);
	expect_class(rules, m, "P2", "outgoing-mail");
	msg_free(m);

	/* MSG_MAX_CHARSETS: a charset past the cap is treated as one iconv
	 * does not know (the 8-bit text guessed: windows-1252 here) */
	m = parse_charsets(&b, MSG_MAX_CHARSETS - 1);
	T_EQ_STR(m->subject, "Срочно! cannot send mail");
	T_CHECK(!(m->flags & MSG_TRUNCATED));
	expect_class(rules, m, "P1", "outgoing-mail");
	msg_free(m);
	m = parse_charsets(&b, MSG_MAX_CHARSETS);
	T_EQ_STR(m->subject, "óÒÏÞÎÏ! cannot send mail");
	T_CHECK(m->flags & MSG_TRUNCATED);
	T_CHECK(m->flags & MSG_UNKNOWN_CHARSET);
	expect_class(rules, m, "P2", "outgoing-mail");
	msg_free(m);

	buf_free(&b);
	classify_rules_free(rules);
}

int
main(int argc, char **argv)
{
	exe_path = argc > 0 ? argv[0] : NULL;
	test_threads();
	test_rfc2047();
	test_bodies();
	test_html();
	test_structure();
	test_report();
	test_truncation();
	test_odd_input();
	test_big();
	test_ids_and_from();
	test_encode();
	test_charset_api();
	test_sample_files();
	test_attachment_big();
	test_caps();
	T_EQ_INT(invariant_failures, 0);
	return t_done();
}
