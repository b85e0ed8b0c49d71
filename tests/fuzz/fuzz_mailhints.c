/*
 * fuzz_mailhints - libFuzzer target for mail_hints_parse() (mailhints.h).
 *
 * The input is the client's text; when it starts with "@domain\n" that
 * line is the sender's domain.  Besides the sanitizers, it checks the
 * header's promises and aborts when one is broken: host names valid and
 * lower-case, ports 0..65535, security -1 or an enum diag_security, user
 * and reply_text printable ASCII within their caps, reply_code "NNN" or
 * "NNN C.S.D", the return value the number of fields found, and free
 * leaving "nothing found".
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "mailhints.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_mailhints: broken promise: %s\n", what);
		abort();
	}
}

static int
valid_host(const char *h)
{
	size_t n = strlen(h), i, label = 0;

	if (n == 0 || n > 253 || h[0] == '.' || h[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(islower((unsigned char)h[i]) || isdigit((unsigned char)h[i]) || h[i] == '-'))
			return 0;
		if (label == 0 && h[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return strchr(h, '.') != NULL;
}

static int
printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return i > 0 && i <= max;
}

static int
valid_code(const char *c)
{
	size_t n = strlen(c);

	if (n < 3 || (c[0] != '4' && c[0] != '5') || !isdigit((unsigned char)c[1]) ||
	    !isdigit((unsigned char)c[2]))
		return 0;
	if (n == 3)
		return 1;
	return c[3] == ' ' && c[4] == c[0] && c[5] == '.' && n <= 13;
}

static void
check_proto(const char *host, int port, int sec)
{
	if (host)
		must(valid_host(host), "host name valid and lower-case");
	must(port >= 0 && port <= 65535, "port range");
	must(sec == -1 || sec == DIAG_SEC_TLS || sec == DIAG_SEC_STARTTLS ||
	    sec == DIAG_SEC_NONE, "security value");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nl;
	char domain[256] = "";
	struct mail_hints h;
	int n;

	if (size > 1 && text[0] == '@' && (nl = memchr(text, '\n', size)) != NULL &&
	    (size_t)(nl - text) < sizeof(domain)) {
		memcpy(domain, text + 1, (size_t)(nl - text) - 1);
		domain[nl - text - 1] = '\0';
		size -= (size_t)(nl - text) + 1;
		text = nl + 1;
	}
	n = mail_hints_parse(text, size, domain[0] ? domain : NULL, &h);
	check_proto(h.smtp_host, h.smtp_port, h.smtp_security);
	check_proto(h.imap_host, h.imap_port, h.imap_security);
	if (h.user)
		must(printable(h.user, MAILHINTS_USER_MAX), "user printable, capped");
	if (h.reply_code)
		must(valid_code(h.reply_code), "reply_code form");
	must((h.reply_code == NULL) == (h.reply_text == NULL), "reply code and text together");
	if (h.reply_text)
		must(printable(h.reply_text, MAILHINTS_REPLY_MAX), "reply_text printable, capped");
	if (h.error_hint)
		must(h.error_hint[0] != '\0', "error_hint not empty");
	must(n == (h.smtp_host != NULL) + (h.smtp_port != 0) + (h.smtp_security >= 0) +
	    (h.imap_host != NULL) + (h.imap_port != 0) + (h.imap_security >= 0) +
	    (h.user != NULL) + (h.reply_code != NULL) + (h.error_hint != NULL),
	    "return value counts the fields");
	mail_hints_free(&h);
	must(h.smtp_host == NULL && h.user == NULL && h.reply_text == NULL &&
	    h.smtp_security == -1 && h.imap_security == -1, "free resets");
	return 0;
}
