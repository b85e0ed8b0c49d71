/*
 * fuzz_msg - libFuzzer target for msg_parse() and what runs on its output
 * in the milter: the RFC 2047 helpers and the classifier.
 *
 * Besides the sanitizers, it checks msg.h's promises and aborts when one
 * is broken: every string valid UTF-8 without NUL bytes, text within
 * max_text, and msg_encode_header_value() round-tripping the subject
 * through msg_decode_header_value().
 *
 * Rules: $HELPGATE_FUZZ_KEYWORDS or conf/keywords (run from the top of the
 * tree).  Build with -DFUZZ_NO_CLASSIFY to fuzz msg.c alone.
 *
 * Every step is linear in the input, so time is a promise too: make fuzz
 * gives each input FUZZ_TIMEOUT (2) seconds, the regression run in make
 * check 10, and tests/fuzz/corpus/adv-* holds the adversarial shapes of
 * tests/bench/bench-classify.c at 64 KB (bench-classify --corpus DIR
 * writes them), which took 16-40 s here when decoding or classifying
 * still rescanned its input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "msg.h"
#ifndef FUZZ_NO_CLASSIFY
#include "classify.h"

static struct classify_rules *rules;
#endif

#define FUZZ_MAX_TEXT	(64 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
#ifndef FUZZ_NO_CLASSIFY
	{
		const char *dir = getenv("HELPGATE_FUZZ_KEYWORDS");
		struct buf errors;

		buf_init(&errors, 64 * 1024);
		rules = classify_rules_load(dir ? dir : "conf/keywords", &errors);
		if (rules == NULL)
			fprintf(stderr, "fuzz_msg: no rules, classifier not fuzzed:\n%s\n",
			    buf_str(&errors));
		buf_free(&errors);
	}
#endif
	return 0;
}

static int
valid_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t k, i;

	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf)
			k = 2;
		else if (*s >= 0xe0 && *s <= 0xef)
			k = 3;
		else if (*s >= 0xf0 && *s <= 0xf4)
			k = 4;
		else
			return 0;
		for (i = 1; i < k; i++)
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		if ((*s == 0xe0 && s[1] < 0xa0) || (*s == 0xed && s[1] > 0x9f) ||
		    (*s == 0xf0 && s[1] < 0x90) || (*s == 0xf4 && s[1] > 0x8f))
			return 0;
		s += k;
	}
	return 1;
}

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_msg: broken promise: %s\n", what);
		abort();
	}
}

static void
check(const struct msg *m)
{
	size_t i;

	must(valid_utf8(m->subject), "subject UTF-8");
	must(valid_utf8(m->from_address) && valid_utf8(m->from_name), "from UTF-8");
	must(valid_utf8(m->message_id) && valid_utf8(m->in_reply_to), "ids UTF-8");
	must(valid_utf8(m->content_type), "content_type UTF-8");
	must(valid_utf8(m->text), "text UTF-8");
	must(strlen(m->text) == m->text_len, "text_len / no NUL");
	must(m->text_len <= FUZZ_MAX_TEXT, "text within max_text");
	must(m->header_count <= 1000, "header cap");
	for (i = 0; i < m->header_count; i++) {
		must(valid_utf8(m->headers[i].name), "header name UTF-8");
		must(valid_utf8(m->headers[i].raw), "header raw UTF-8");
		must(valid_utf8(m->headers[i].value), "header value UTF-8");
		must(strlen(m->headers[i].value) <= 64 * 1024, "header value cap");
	}
	for (i = 0; i < m->reference_count; i++)
		must(valid_utf8(m->references[i]), "reference UTF-8");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct msg *m;
	char *line, *dec, *enc, *back;
	const char *nl;
	size_t n;

	m = msg_parse(raw, size, FUZZ_MAX_TEXT);
	check(m);

	/* The first line, as a header value of its own. */
	nl = memchr(raw, '\n', size);
	n = nl ? (size_t)(nl - raw) : size;
	line = malloc(n + 1);
	memcpy(line, raw, n);
	line[n] = '\0';		/* stops at an embedded NUL, as C callers would */
	dec = msg_decode_header_value(line);
	must(valid_utf8(dec), "decoded line UTF-8");
	free(dec);

	/* The first line as a charset name, the rest as text in it. */
	if (n < 64) {
		size_t rest = nl ? size - n - 1 : 0, outlen = 0;
		char *conv = msg_charset_to_utf8(line, nl ? nl + 1 : "", rest, &outlen);

		if (conv != NULL) {
			const char *seg;

			/* NUL bytes are kept: check each piece between them. */
			must(conv[outlen] == '\0', "charset_to_utf8 terminated");
			for (seg = conv; seg < conv + outlen; seg += strlen(seg) + 1)
				must(valid_utf8(seg), "charset_to_utf8 UTF-8");
			free(conv);
		}
	}
	free(line);

	/* What helpgate writes back: the subject, encoded and decoded again. */
	enc = msg_encode_header_value(m->subject, 9);
	for (n = 0; enc[n]; n++)
		must((unsigned char)enc[n] < 0x80 && enc[n] != '\r', "encoded is ASCII");
	if (strlen(m->subject) < 16 * 1024) {
		back = msg_decode_header_value(enc);
		must(strcmp(back, m->subject) == 0, "encode/decode round trip");
		free(back);
	}
	free(enc);

#ifndef FUZZ_NO_CLASSIFY
	if (rules != NULL) {
		struct classify_result result;

		classify_message(rules, m, "<client@client.test>", &result);
		classify_adjust(&result, "trial", 1, 3);
		must(result.urgency >= 1 && result.urgency <= 4, "urgency P1..P4");
	}
#endif
	msg_free(m);
	return 0;
}
