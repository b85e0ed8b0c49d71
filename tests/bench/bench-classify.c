/*
 * bench-classify - how fast the classifier reads a large message, and that
 * no shape of message costs more than linear time.
 *
 * 1. Builds a ~100 KB support message (English and Russian paragraphs, a
 *    pasted log, some quoted lines, keywords scattered through it, so that
 *    the folding, the automaton and the hit path all work), then runs
 *    classify_message() on it for about two seconds, and msg_parse() +
 *    classify_message() on the same message as raw RFC 5322 text.  Prints
 *        classify 100KB: NNNN msg/s (NNN MB/s)
 *        parse+classify 100KB: NNNN msg/s (NNN MB/s)
 * 2. Adversarial shapes: raw messages built to hit every place where
 *    decoding or classification could rescan its input (a long line of
 *    capitalised words, many short lines of capitals, deep quoting,
 *    thousands of "On ... wrote:" lines, many encoded-words, alternating
 *    charsets, many MIME parts, deep MIME nesting, a huge header, many
 *    headers, nested HTML, a tag with many attributes, "!!!", ...), each
 *    at 16, 64 and 256 KB, run through msg_parse() + classify_message()
 *    (max_text 256 KB, the milter's default MaxBodyScan).  For each shape
 *    it prints the CPU time per message at each size, the cost ratio from
 *    one size to the next (x4 the input: about 4 is linear) and the cost
 *    against plain prose of the same size measured in the same run
 *    ("prose").  A step above SUPERLINEAR_RATIO that is also more than
 *    half as steep again as prose's own step makes the line SUPERLINEAR:
 *    prose's step shows what the machine adds (from 64 to 256 KB the data
 *    leaves the L2 cache: prose itself steps 4.5-5), a quadratic shape
 *    steps 11-20.
 * Rates are per second of this process's CPU time (each measurement runs
 * for about that long), so other work on a shared machine distorts them
 * less than wall-clock time would.  Run from the repository root (reads
 * conf/keywords), or pass the keyword directory and the seconds per
 * measurement:
 *     bench-classify [KEYWORDS_DIR [SECONDS]]
 *     bench-classify --shapes [KEYWORDS_DIR [SECONDS]]   the shapes only
 *     bench-classify --throughput [KEYWORDS_DIR [SECONDS]]   the 100 KB part only
 *     bench-classify --corpus DIR      writes each shape but prose at 64 KB
 *                                      (at most 65536 bytes, libFuzzer's
 *                                      -max_len) to DIR/adv-SHAPE.eml
 * The target is 5000 msg/s for classify alone on one core; a last line
 * says whether it was met and how many shapes were superlinear, and with
 * BENCH_STRICT=1 in the environment a miss of either is exit status 1 (as
 * tests/bench/run.sh does for its targets).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"

#define TARGET_BYTES	(100 * 1024)
#define TARGET_RATE	5000.0	/* classify_message() calls per CPU second */
#define SHAPE_MAX_TEXT	(256 * 1024)	/* the milter's default MaxBodyScan */
#define SUPERLINEAR_RATIO 6.0	/* cost ratio per x4 of input that is flagged ... */
#define SUPERLINEAR_PROSE 1.5	/* ... when also this many times prose's step */
#define CORPUS_BYTES	65536	/* libFuzzer's -max_len in make fuzz */

static const char *const paragraphs[] = {
	/* each in parentheses: one element of several literals (clang -Wstring-concatenation) */
	("Hello support team,\n"
	 "since this morning our office has trouble with email. Some messages stay in\n"
	 "the outbox for a long time and then go out, others seem fine. We use Outlook\n"
	 "on Windows and Thunderbird on two laptops. The download of new mail is slow as\n"
	 "well, but I am not sure whether that is related.\n"),

	("Здравствуйте! У нас с утра проблемы с почтой: часть писем уходит нормально,\n"
	 "а часть висит в исходящих по полчаса. Мы ничего не меняли в настройках,\n"
	 "пароль тот же, компьютеры те же. Подскажите, пожалуйста, в чём может быть\n"
	 "дело и что нам проверить со своей стороны.\n"),

	("Here is what the client shows when it fails (copied from the log window):\n"
	 "2026-11-23 09:14:02 SMTP: 250 2.1.0 Sender OK\n"
	 "2026-11-23 09:14:03 SMTP: 451 4.7.1 Greylisted, please try again later\n"
	 "2026-11-23 09:20:11 SMTP: 250 2.0.0 Ok: queued as 4F2A91C03\n"),

	("> On the previous ticket you told us to check the DNS records.\n"
	 "> We did that and the MX and SPF records look correct to us.\n"
	 "> Please tell us if anything else is needed.\n"),

	("Также бухгалтерия спрашивает про счёт за прошлый месяц: оплата прошла,\n"
	 "но закрывающие документы мы пока не получили. Это не срочно, просто\n"
	 "напоминаем. Спасибо за помощь!\n"),

	("We have about forty users in two offices. Most of them only use webmail,\n"
	 "a few use phones with the built-in mail app. Nobody reported problems with\n"
	 "receiving messages, it is only sending from desktop clients that is slow.\n"
	 "If you need remote access to one of the machines we can arrange that.\n"),

	("Кстати, коллеги из второго офиса пишут, что у них всё работает, но они\n"
	 "подключены через другого провайдера. Может быть, дело в нашем канале?\n"
	 "Скорость интернета в норме, сайты открываются быстро.\n"),

	("Thanks in advance, and sorry for the long message. I wanted to give you all\n"
	 "the details at once so that we do not have to go back and forth.\n"),
};

static char *
build_text(size_t *len)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b, 2 * TARGET_BYTES);
	while (b.len < TARGET_BYTES) {
		buf_append_str(&b, paragraphs[i++ % (sizeof(paragraphs) / sizeof(paragraphs[0]))]);
		buf_append_char(&b, '\n');
	}
	*len = b.len;
	return buf_steal(&b);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints one result line; returns messages per second. */
static double
report(const char *what, long n, double secs, size_t bytes)
{
	printf("%s %zuKB: %.0f msg/s (%.0f MB/s)\n", what, bytes / 1024, (double)n / secs,
	    (double)n * (double)bytes / secs / 1e6);
	return (double)n / secs;
}

/* ------------------------------------------------------------------ */
/* Adversarial shapes                                                  */

static uint32_t rng_state;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* The header block every shape starts with (ctype NULL: plain UTF-8 text). */
static void
head(struct buf *b, const char *subject, const char *ctype)
{
	buf_printf(b, "From: Ivan Petrov <ivan@client.test>\r\n"
	    "To: support@example.com\r\n"
	    "Subject: %s\r\n"
	    "Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n"
	    "Message-ID: <adversarial@client.test>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: %s\r\n\r\n", subject, ctype ? ctype : "text/plain; charset=utf-8");
}

/* Appends unit while the message stays within n bytes. */
static void
fill(struct buf *b, size_t n, const char *unit)
{
	size_t ul = strlen(unit);

	while (b->len + ul <= n)
		buf_append(b, unit, ul);
}

static void
shape_prose(struct buf *b, size_t n)
{
	size_t i = 0, pl;

	head(b, "Mail stuck in the outbox", NULL);
	for (;;) {
		const char *p = paragraphs[i++ % (sizeof(paragraphs) / sizeof(paragraphs[0]))];

		pl = strlen(p);
		if (b->len + pl + 1 > n)
			break;
		buf_append(b, p, pl);
		buf_append_char(b, '\n');
	}
}

/* Random capitalised words of 3-9 letters; sep ends each word, and with
 * line set a line ends after every one to four words. */
static void
caps_words(struct buf *b, size_t n, int lines)
{
	char w[16];

	rng_state = 2463534242u;
	while (b->len + 12 <= n) {
		size_t len = 3 + rng() % 7, k;

		for (k = 0; k < len; k++)
			w[k] = (char)('A' + rng() % 26);
		w[k++] = lines && rng() % 3 == 0 ? '\n' : ' ';
		buf_append(b, w, k);
	}
}

static void
shape_caps_words(struct buf *b, size_t n)
{
	head(b, "help", NULL);
	buf_append_str(b, "Cannot send mail. ");
	caps_words(b, n, 0);
}

static void
shape_caps_lines(struct buf *b, size_t n)
{
	head(b, "help", NULL);
	buf_append_str(b, "Cannot send mail.\n");
	caps_words(b, n, 1);
}

static void
shape_caps_subject(struct buf *b, size_t n)
{
	size_t start;

	buf_append_str(b, "From: Ivan Petrov <ivan@client.test>\r\nSubject: Cannot send mail ");
	start = b->len;
	/* A header value is cut at 64 KiB: the rest goes into other headers. */
	while (b->len + 64 <= n) {
		if (b->len - start > 60 * 1024) {
			buf_append_str(b, "\r\nX-Shout: ");
			start = b->len;
		}
		buf_append_str(b, "WORD ");
	}
	buf_append_str(b, "\r\n\r\nPlease help.\r\n");
}

/* Encoded-words in the Subject and, past a header value's 64 KiB, in
 * further headers; charsets: NULL for UTF-8 base64 words, else a list to
 * cycle through with Q words. */
static void
encoded_words(struct buf *b, size_t n, const char *const *charsets, size_t ncs)
{
	size_t start, i = 0;

	buf_append_str(b, "From: Ivan Petrov <ivan@client.test>\r\nSubject:");
	start = b->len;
	while (b->len + 96 <= n) {
		if (b->len - start > 60 * 1024) {
			buf_append_str(b, "\r\nComments:");
			start = b->len;
		}
		if (charsets == NULL)
			buf_append_str(b, "\r\n =?UTF-8?B?0J/RgNC+0LHQu9C10LzQsA==?=");
		else
			buf_printf(b, "\r\n =?%s?Q?=C1=C2=E4?=", charsets[i++ % ncs]);
	}
	buf_append_str(b, "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCannot send mail.\r\n");
}

static void
shape_encoded_words(struct buf *b, size_t n)
{
	encoded_words(b, n, NULL, 0);
}

static void
shape_charsets(struct buf *b, size_t n)
{
	static const char *const cs[] = {
		"iso-8859-2", "iso-8859-5", "koi8-r", "windows-1251", "iso-8859-7",
		"windows-1250", "iso-8859-9", "koi8-u", "windows-1253", "iso-8859-13",
		"ibm866", "windows-1257", "iso-8859-15", "windows-1254", "iso-8859-4",
		"x-mac-cyrillic", "iso-8859-3", "windows-1258",
	};

	encoded_words(b, n, cs, sizeof(cs) / sizeof(cs[0]));
}

static void
shape_mime_parts(struct buf *b, size_t n)
{
	head(b, "help", "multipart/mixed; boundary=\"b\"");
	buf_append_str(b, "--b\r\nContent-Type: text/plain\r\n\r\nCannot send mail.\r\n");
	fill(b, n - 8, "--b\r\nContent-Type: application/octet-stream; name=x.bin\r\n\r\nx\r\n");
	buf_append_str(b, "--b--\r\n");
}

/* Nested multiparts past the depth cap, none of them closed, and lines
 * that start like a delimiter: every level reads all of them. */
static void
shape_mime_deep(struct buf *b, size_t n)
{
	head(b, "help", "multipart/mixed; boundary=\"L0\"");
	for (int i = 0; i < 20; i++)
		buf_printf(b, "--L%d\r\nContent-Type: multipart/mixed; boundary=\"L%d\"\r\n\r\n",
		    i, i + 1);
	buf_append_str(b, "--L20\r\nContent-Type: text/plain\r\n\r\nCannot send mail.\r\n");
	fill(b, n, "--L0x\r\n");
}

static void
shape_header_huge(struct buf *b, size_t n)
{
	buf_append_str(b, "From: Ivan Petrov <ivan@client.test>\r\nX-Long: start");
	fill(b, n - 64, "\r\n continued header text with Cannot send mail and URGENT words");
	buf_append_str(b, "\r\nSubject: help\r\n\r\nCannot send mail.\r\n");
}

/* first, then pre NUMBER post for 0, 1, ... as long as it fits, then last */
static void
numbered(struct buf *b, size_t n, const char *first, const char *pre, const char *post,
    const char *last)
{
	buf_append_str(b, first);
	for (unsigned i = 0; b->len + 64 <= n; i++)
		buf_printf(b, "%s%u%s", pre, i, post);
	buf_append_str(b, last);
}

static void
shape_headers_many(struct buf *b, size_t n)
{
	numbered(b, n, "From: Ivan Petrov <ivan@client.test>\r\n",
	    "X-H", ": value =?UTF-8?B?0J/RgNC+?=\r\n", "Subject: help\r\n\r\nCannot send mail.\r\n");
}

static void
shape_references(struct buf *b, size_t n)
{
	numbered(b, n, "From: Ivan Petrov <ivan@client.test>\r\nSubject: Re: help\r\nReferences:",
	    "\r\n <id", "@client.test>", "\r\n\r\nCannot send mail.\r\n");
}

static void
shape_html_nested(struct buf *b, size_t n)
{
	static const char unit[] =
	    "<blockquote><div><blockquote><div><blockquote><div><blockquote><div>"
	    "<table><tr><td><p><span><b><i><font>Cannot send mail URGENT</font></i></b></span>"
	    "</p></td><td>x</td></tr></table>"
	    "</div></blockquote></div></blockquote></div></blockquote></div></blockquote>\n";

	head(b, "help", "text/html; charset=utf-8");
	buf_append_str(b, "<html><body>");
	fill(b, n - 16, unit);
	buf_append_str(b, "</body></html>");
}

/* One tag with many distinct attributes (an HTML parser checking each
 * against all before it does quadratic work). */
static void
shape_html_attrs(struct buf *b, size_t n)
{
	head(b, "help", "text/html; charset=utf-8");
	numbered(b, n, "<html><body><p>Cannot send mail.</p><p", " a", "=\"1\"",
	    ">URGENT</p></body></html>");
}

/* A shape is built by gen, or else is head(subject, ctype), lead, and unit
 * as often as it fits. */
struct shape {
	const char	*name;
	void		(*gen)(struct buf *, size_t);
	const char	*subject, *ctype, *lead, *unit;
};

static const struct shape shapes[] = {
	{ "prose", shape_prose, NULL, NULL, NULL, NULL },	/* the baseline: first */
	/* the outage phrase first, so that shouting is judged */
	{ "caps-line", NULL, "help", NULL, "Cannot send mail. ", "WORD " },
	{ "caps-words", shape_caps_words, NULL, NULL, NULL, NULL },
	{ "caps-lines", shape_caps_lines, NULL, NULL, NULL, NULL },
	/* runs of three capitals inside one long word: each a possible
	 * shouted word that turns out not to be one */
	{ "caps-in-word", NULL, "help", NULL, "Cannot send mail. ", "ABCd" },
	{ "caps-subject", shape_caps_subject, NULL, NULL, NULL, NULL },
	{ "quote-deep", NULL, "Re: help", NULL, "Cannot send mail.\n\n",
	  "> > > > > > > > > > > > > > > > > > > > > > > > > URGENT quoted words\n" },
	{ "wrote-lines", NULL, "Re: help", NULL, "Cannot send mail.\n\n",
	  "On Mon, 23 Nov 2026 at 09:30, Ivan Petrov <ivan@client.test> wrote:\n"
	  "> CANNOT SEND\n"
	  "Am 23.11.2026 um 09:30 schrieb Ivan Petrov <ivan@client.test>:\n"
	  "> still broken\n" },
	{ "encoded-words", shape_encoded_words, NULL, NULL, NULL, NULL },
	{ "charsets", shape_charsets, NULL, NULL, NULL, NULL },
	{ "mime-parts", shape_mime_parts, NULL, NULL, NULL, NULL },
	{ "mime-deep", shape_mime_deep, NULL, NULL, NULL, NULL },
	{ "header-huge", shape_header_huge, NULL, NULL, NULL, NULL },
	{ "headers-many", shape_headers_many, NULL, NULL, NULL, NULL },
	{ "references", shape_references, NULL, NULL, NULL, NULL },
	{ "html-nested", shape_html_nested, NULL, NULL, NULL, NULL },
	{ "html-attrs", shape_html_attrs, NULL, NULL, NULL, NULL },
	{ "bangs", NULL, "help", NULL, "Cannot send mail", "!!! HELP!! " },
	{ "blank-runs", NULL, "help", NULL, "",
	  "cannot                                                       send "
	  "mail                                                       server\n" },
	/* base64 and quoted-printable bodies with a line break every few bytes */
	{ "base64", NULL, "help", "text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64",
	  "", "8+/Q0snUxSDQz97U1SDOxSDP1NDSwdfM0cXU09EK\r\n" },
	{ "qp", NULL, "help", "text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
	  "", "Cannot send=\r\n mail =E2=80=99 = =3D =  \r\n=\r\n" },
};
#define NSHAPES	(sizeof(shapes) / sizeof(shapes[0]))

static const size_t shape_kb[] = { 16, 64, 256 };
#define NSIZES	(sizeof(shape_kb) / sizeof(shape_kb[0]))

/* CPU seconds per msg_parse() + classify_message() of raw: the best of
 * COST_ROUNDS averages, each over at least min_secs / COST_ROUNDS (other
 * work on the machine only ever adds time).  One run when a single one
 * takes longer than min_secs. */
#define COST_ROUNDS	5

static double
cost(const struct classify_rules *rules, const struct buf *raw, double min_secs)
{
	struct classify_result res;
	double best = 0;

	for (int round = 0; round < COST_ROUNDS; round++) {
		double t0 = now(), t;
		long n = 0;

		do {
			struct msg *m = msg_parse(raw->data, raw->len, SHAPE_MAX_TEXT);

			classify_message(rules, m, "<ivan@client.test>", &res);
			msg_free(m);
			n++;
		} while ((t = now() - t0) < min_secs / COST_ROUNDS);
		if (round == 0 || t / (double)n < best)
			best = t / (double)n;
		if (t > min_secs)
			break;
	}
	return best;
}

static void
build_shape(const struct shape *sh, size_t bytes, struct buf *raw)
{
	buf_init(raw, bytes + 4096);
	if (sh->gen != NULL) {
		sh->gen(raw, bytes);
		return;
	}
	head(raw, sh->subject, sh->ctype);
	buf_append_str(raw, sh->lead);
	fill(raw, bytes, sh->unit);
}

/* Measures shape i at every size, keeping the lower of c[] and this. */
static void
measure(const struct classify_rules *rules, size_t i, double min_secs, double c[NSIZES])
{
	for (size_t k = 0; k < NSIZES; k++) {
		struct buf raw;
		double t;

		build_shape(&shapes[i], shape_kb[k] * 1024, &raw);
		t = cost(rules, &raw, min_secs);
		buf_free(&raw);
		if (c[k] == 0 || t < c[k])
			c[k] = t;
	}
}

/* Is a step of shape i superlinear: above SUPERLINEAR_RATIO, and for
 * other shapes than prose (0) SUPERLINEAR_PROSE times prose's step? */
static int
superlinear_row(double c[][NSIZES], size_t i)
{
	for (size_t k = 1; k < NSIZES; k++) {
		double r = c[i][k] / c[i][k - 1];

		if (r > SUPERLINEAR_RATIO &&
		    (i == 0 || r > SUPERLINEAR_PROSE * c[0][k] / c[0][k - 1]))
			return 1;
	}
	return 0;
}

/* Returns the number of SUPERLINEAR shapes.  A shape that looks superlinear
 * is measured twice more, prose with it (the lowest time counts: other
 * work on the machine only adds), so that one disturbed cell does not
 * make a linear shape look quadratic. */
static int
run_shapes(const struct classify_rules *rules, double seconds)
{
	double c[NSHAPES][NSIZES], min_secs = seconds / 10;
	int superlinear = 0;

	memset(c, 0, sizeof(c));
	printf("== Adversarial shapes: msg_parse + classify_message, CPU ms per message\n"
	    "   (x4 = cost ratio per 4 times the input, about 4 when linear, flagged above %.0f\n"
	    "    when also %.1f times prose's; /prose = cost against plain prose of the same\n"
	    "    size, this run)\n", SUPERLINEAR_RATIO, SUPERLINEAR_PROSE);
	for (size_t i = 0; i < NSHAPES; i++) {
		measure(rules, i, min_secs, c[i]);
		for (int again = 0; again < 2 && superlinear_row(c, i); again++) {
			measure(rules, 0, min_secs, c[0]);
			measure(rules, i, min_secs, c[i]);
		}
	}
	printf("%-14s", "shape");
	for (size_t k = 0; k < NSIZES; k++)
		printf(" %7zuKB", shape_kb[k]);
	printf("   x4(16>64) x4(64>256)  /prose(16 64 256)\n");
	for (size_t i = 0; i < NSHAPES; i++) {
		printf("%-14s", shapes[i].name);
		for (size_t k = 0; k < NSIZES; k++)
			printf(" %9.3f", c[i][k] * 1e3);
		printf("  ");
		for (size_t k = 1; k < NSIZES; k++)
			printf(" %9.1f", c[i][k] / c[i][k - 1]);
		printf("   ");
		for (size_t k = 0; k < NSIZES; k++)
			printf(" %5.1f", c[i][k] / c[0][k]);
		if (superlinear_row(c, i)) {
			printf("  SUPERLINEAR");
			superlinear++;
		}
		printf("\n");
	}
	return superlinear;
}

/* The shapes at CORPUS_BYTES, for the fuzz regression run. */
static int
write_corpus(const char *dir)
{
	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench-classify: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (size_t i = 1; i < NSHAPES; i++) {		/* not prose */
		struct buf raw;
		char path[4096];
		FILE *fp;

		build_shape(&shapes[i], CORPUS_BYTES, &raw);
		snprintf(path, sizeof(path), "%s/adv-%s.eml", dir, shapes[i].name);
		if ((fp = fopen(path, "wb")) == NULL ||
		    fwrite(raw.data, 1, raw.len, fp) != raw.len || fclose(fp) != 0) {
			fprintf(stderr, "bench-classify: %s: %s\n", path, strerror(errno));
			return 1;
		}
		printf("%s: %zu bytes\n", path, raw.len);
		buf_free(&raw);
	}
	return 0;
}

/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	const char *dir = "conf/keywords", *strict = getenv("BENCH_STRICT");
	double seconds = 2.0;
	struct classify_rules *rules;
	struct classify_result res;
	struct msg m;
	struct buf errors, raw;
	char *text;
	size_t text_len;
	double t0, t, rate = TARGET_RATE;
	long n;
	int shapes_only = 0, throughput_only = 0, superlinear = 0;

	if (argc > 2 && strcmp(argv[1], "--corpus") == 0)
		return write_corpus(argv[2]);
	if (argc > 1 && (strcmp(argv[1], "--shapes") == 0 || strcmp(argv[1], "--throughput") == 0)) {
		shapes_only = argv[1][2] == 's';
		throughput_only = !shapes_only;
		argc--;
		argv++;
	}
	if (argc > 1)
		dir = argv[1];
	if (argc > 2)
		seconds = strtod(argv[2], NULL);
	if (seconds <= 0 || seconds > 60)
		seconds = 2.0;
	buf_init(&errors, 64 * 1024);
	if ((rules = classify_rules_load(dir, &errors)) == NULL) {
		fprintf(stderr, "bench-classify: %s", buf_str(&errors));
		return 1;
	}
	if (shapes_only)
		goto shapes;
	text = build_text(&text_len);

	memset(&m, 0, sizeof(m));
	m.subject = "Re: письма висят в исходящих / mail stuck in outbox";
	m.from_address = "ivan@example.com";
	m.from_name = "Ivan";
	m.message_id = "bench@example.com";
	m.in_reply_to = "";
	m.content_type = "text/plain";
	m.text = text;
	m.text_len = text_len;

	classify_message(rules, &m, "ivan@example.com", &res);
	printf("# %s %s %s; %s\n", classify_urgency_name(res.urgency), res.category, res.lang,
	    res.reasons);

	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < 100; i++)
			classify_message(rules, &m, "ivan@example.com", &res);
		n += 100;
	} while ((t = now() - t0) < seconds);
	rate = report("classify", n, t, text_len);

	buf_init(&raw, 4 * TARGET_BYTES);
	buf_append_str(&raw,
	    "From: Ivan <ivan@example.com>\r\n"
	    "To: support@example.com\r\n"
	    "Subject: =?UTF-8?B?UmU6INC/0LjRgdGM0LzQsCDQstC40YHRj9GCINCyINC40YHRhdC+0LTRj9GJ0LjRhQ==?=\r\n"
	    "Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n"
	    "Message-ID: <bench@example.com>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n");
	buf_append(&raw, text, text_len);

	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < 20; i++) {
			struct msg *pm = msg_parse(raw.data, raw.len, 1024 * 1024);

			classify_message(rules, pm, "ivan@example.com", &res);
			msg_free(pm);
		}
		n += 20;
	} while ((t = now() - t0) < seconds);
	report("parse+classify", n, t, raw.len);
	buf_free(&raw);
	free(text);
	printf("\n");

shapes:
	if (!throughput_only)
		superlinear = run_shapes(rules, seconds);
	if (!shapes_only)
		printf("classify target %.0f msg/s: %s\n", TARGET_RATE,
		    rate >= TARGET_RATE ? "met" : "MISSED");
	if (superlinear)
		printf("adversarial shapes: %d of %zu superlinear: MISSED\n", superlinear, NSHAPES);
	else if (!throughput_only)
		printf("adversarial shapes: all %zu linear\n", NSHAPES);

	buf_free(&errors);
	classify_rules_free(rules);
	return (rate < TARGET_RATE || superlinear) && strict && strcmp(strict, "1") == 0 ? 1 : 0;
}
