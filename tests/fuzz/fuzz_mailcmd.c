/*
 * fuzz_mailcmd - libFuzzer target for mailcmd_parse() and mailcmd_strip()
 * (mailcmd.h).
 *
 * mailcmd_parse() reads the top of every support message (a client's
 * "#resolve" lines are logged as ignored), so its input is anyone's;
 * mailcmd_strip() rewrites staff mail.  Besides the sanitizers it checks
 * their promises: at most MAILCMD_MAX commands, every line and field
 * NUL-terminated within its size, block_end within the text, and a body
 * with nothing taken out returned byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mailcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_mailcmd: broken promise: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mailcmd_list l;
	const char *text = (const char *)data;
	const char *hend;
	struct buf body;
	size_t off = 0;
	int changed;

	mailcmd_parse(text, size, &l);
	must(l.n <= MAILCMD_MAX, "at most MAILCMD_MAX commands");
	must(l.block_end <= size, "block_end within the text");
	for (size_t i = 0; i < l.n; i++) {
		must(memchr(l.v[i].line, '\0', sizeof(l.v[i].line)) != NULL, "line terminated");
		must(memchr(l.v[i].arg, '\0', sizeof(l.v[i].arg)) != NULL, "arg terminated");
		must(memchr(l.v[i].text, '\0', sizeof(l.v[i].text)) != NULL, "text terminated");
		must(memchr(l.v[i].lesson, '\0', sizeof(l.v[i].lesson)) != NULL, "lesson terminated");
		must(memchr(l.v[i].error, '\0', sizeof(l.v[i].error)) != NULL, "error terminated");
		must(l.v[i].kind != MAILCMD_BAD || l.v[i].error[0] != '\0', "a refusal says why");
	}
	/* the same bytes as a whole message */
	hend = size >= 4 ? memmem(text, size, "\r\n\r\n", 4) : NULL;
	if (hend != NULL)
		off = (size_t)(hend - text) + 4;
	buf_init(&body, 4 * size + 4096);
	changed = mailcmd_strip(text, size, off, &body);
	if (!changed)
		must(body.len == size - off && memcmp(body.data ? body.data : "", text + off,
		    size - off) == 0, "an unchanged body comes back byte for byte");
	buf_free(&body);
	return 0;
}
