/*
 * fuzz_authres - libFuzzer target for authres_parse() (authres.h).
 *
 * An Authentication-Results header is whatever the sender (or an MTA on the
 * way) wrote.  Besides the sanitizers it checks the parser's promises: at
 * most max results, every field NUL-terminated within its size and
 * lowercase, the authserv-id without blanks.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_authres: broken promise: %s\n", what);
		abort();
	}
}

static void
lowercase(const char *s, size_t size, const char *what)
{
	must(memchr(s, '\0', size) != NULL, what);
	for (; *s; s++)
		must(!isupper((unsigned char)*s), what);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authres_result r[4];
	char id[64], *value = malloc(size + 1);
	size_t n;

	if (value == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	n = authres_parse(value, id, sizeof(id), r, 4);
	must(n <= 4, "at most max results");
	lowercase(id, sizeof(id), "authserv-id");
	must(strchr(id, ' ') == NULL && strchr(id, ';') == NULL, "authserv-id is one token");
	for (size_t i = 0; i < n; i++) {
		lowercase(r[i].method, sizeof(r[i].method), "method");
		must(r[i].method[0] != '\0', "a result has a method");
		lowercase(r[i].result, sizeof(r[i].result), "result");
		lowercase(r[i].domain, sizeof(r[i].domain), "domain");
	}
	free(value);
	return 0;
}
