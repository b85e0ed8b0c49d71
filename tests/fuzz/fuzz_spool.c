/*
 * fuzz_spool - libFuzzer target for spool_parse() (spool.h).
 *
 * A spool file is untrusted bytes: anyone who can write to SpoolDirectory,
 * or a disk that tore a file, chooses them.  Besides the sanitizers, it
 * checks the header's promises and aborts when one is broken: on success
 * received is positive, the support address is not empty, truncated is
 * 0 or 1, no value holds a LF, and raw is the tail of the input.  A parsed
 * record written again with spool_format_fields must parse to the same
 * record (values with CR come back with blanks, as the writer promises).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_spool: broken promise: %s\n", what);
		abort();
	}
}

/* Whether b is a as the writer stores it: CR and LF turned into blanks. */
static int
same_written(const char *a, const char *b)
{
	for (; *a; a++, b++)
		if (*b != (*a == '\r' || *a == '\n' ? ' ' : *a))
			return 0;
	return *b == '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_record r, again;
	struct buf b;
	char *copy, *copy2;
	size_t len2;

	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (spool_parse(copy, size, &r) != 0) {
		free(copy);
		return 0;
	}
	must(r.received > 0, "received positive");
	must(r.support_address[0] != '\0', "support address present");
	must(r.truncated == 0 || r.truncated == 1, "truncated 0 or 1");
	must(strchr(r.queue_id, '\n') == NULL && strchr(r.envelope_from, '\n') == NULL &&
	    strchr(r.support_address, '\n') == NULL, "values without LF");
	must(r.raw >= copy && r.raw + r.raw_len == copy + size, "raw is the input's tail");
	must(memcmp(r.raw, data + (r.raw - copy), r.raw_len) == 0, "raw unchanged");

	buf_init(&b, 4 * SPOOL_FIELDS_MAX + size);
	must(spool_format_fields(&b, &r) == 0, "fields fit");
	buf_append(&b, r.raw, r.raw_len);
	must(!b.truncated, "record fits");
	len2 = b.len;
	copy2 = malloc(len2 + 1);
	must(copy2 != NULL, "memory");
	memcpy(copy2, buf_str(&b), len2);
	copy2[len2] = '\0';
	must(spool_parse(copy2, len2, &again) == 0, "written record parses");
	must(again.received == r.received, "received round trip");
	must(again.truncated == r.truncated, "truncated round trip");
	must(same_written(r.queue_id, again.queue_id), "queue-id round trip");
	must(same_written(r.envelope_from, again.envelope_from), "envelope-from round trip");
	must(same_written(r.support_address, again.support_address), "support-address round trip");
	must(again.raw_len == r.raw_len && memcmp(again.raw, r.raw, r.raw_len) == 0,
	    "raw round trip");
	free(copy2);
	buf_free(&b);
	free(copy);
	return 0;
}
