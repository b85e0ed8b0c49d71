/*
 * seal - X-Helpgate-Seal: make and verify (seal.h).
 *
 * The MAC is GnuTLS's HMAC-SHA256 (GnuTLS already does the diagnosis's
 * TLS), over "helpgate-seal 1\n<t>\n<case>\n<message-id>\n<cover>"; the
 * Message-ID is compared without its angle brackets and surrounding
 * blanks, the way the milter and the store keep it; the cover is one
 * "name:value\n" line per covered header.
 */
#include "seal.h"

#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

static const char hexdigits[] = "0123456789abcdef";

static int
seal_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Writes a new random key to path without ever showing a half-written
 * file: a private temporary file, then link(2), which fails if another
 * daemon made the key first (that one is used). */
static int
seal_key_create(const char *path, char *err, size_t errlen)
{
	unsigned char raw[SEAL_KEY_LEN];
	char tmp[4096], text[SEAL_KEY_LEN * 2 + 2];
	int fd, rc = -1;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		snprintf(err, errlen, "no random bytes for a new seal key: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		text[2 * i] = hexdigits[raw[i] >> 4];
		text[2 * i + 1] = hexdigits[raw[i] & 15];
	}
	text[2 * SEAL_KEY_LEN] = '\n';
	text[2 * SEAL_KEY_LEN + 1] = '\0';
	gnutls_memset(raw, 0, sizeof(raw));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "seal key path too long");
		return -1;
	}
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (link(tmp, path) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	gnutls_memset(text, 0, sizeof(text));
	unlink(tmp);
	return rc;
}

int
seal_key_load(const char *path, struct seal_key *key, char *err, size_t errlen)
{
	char text[SEAL_KEY_LEN * 2 + 16];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 && errno == ENOENT) {
		if (seal_key_create(path, err, errlen) != 0)
			return -1;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1) {
		snprintf(err, errlen, "cannot read the seal key %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < SEAL_KEY_LEN * 2) {
		snprintf(err, errlen, "%s: not a seal key (64 hex digits)", path);
		return -1;
	}
	for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
		int hi = seal_hexval((unsigned char)text[2 * i]), lo = seal_hexval((unsigned char)text[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			gnutls_memset(text, 0, sizeof(text));
			snprintf(err, errlen, "%s: not a seal key (64 hex digits)", path);
			return -1;
		}
		key->bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	gnutls_memset(text, 0, sizeof(text));
	return 0;
}

/* message_id without <> and surrounding blanks, into out. */
static void
seal_bare_id(const char *id, char *out, size_t outlen)
{
	size_t len;

	while (*id == ' ' || *id == '\t' || *id == '<')
		id++;
	len = strlen(id);
	while (len > 0 && (id[len - 1] == ' ' || id[len - 1] == '\t' || id[len - 1] == '>' ||
	    id[len - 1] == '\r' || id[len - 1] == '\n'))
		len--;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, id, len);
	out[len] = '\0';
}

void
seal_cover_add(struct buf *cover, const char *name, const char *value)
{
	int space = 0, started = 0;

	if (strcasecmp(name, "Subject") != 0 &&
	    (strncasecmp(name, "X-Helpgate-", 11) != 0 || strcasecmp(name, "X-Helpgate-Seal") == 0))
		return;
	for (const char *p = name; *p; p++)
		buf_append_char(cover, (char)tolower((unsigned char)*p));
	buf_append_char(cover, ':');
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = started;
			continue;
		}
		if (space)
			buf_append_char(cover, ' ');
		buf_append_char(cover, *p);
		space = 0;
		started = 1;
	}
	buf_append_char(cover, '\n');
}

static int
seal_mac(const struct seal_key *key, const char *message_id, long long case_id, long long when,
    const struct buf *cover, unsigned char mac[32])
{
	gnutls_hmac_hd_t h;
	char id[1024], data[1200];
	int n;

	if (cover != NULL && cover->truncated)
		return -1;
	seal_bare_id(message_id, id, sizeof(id));
	n = snprintf(data, sizeof(data), "helpgate-seal 1\n%lld\n%lld\n%s\n", when, case_id, id);
	if (n < 0 || (size_t)n >= sizeof(data))
		return -1;
	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, key->bytes, SEAL_KEY_LEN) != 0)
		return -1;
	if (gnutls_hmac(h, data, (size_t)n) != 0 ||
	    (cover != NULL && cover->len > 0 && gnutls_hmac(h, buf_str(cover), cover->len) != 0)) {
		gnutls_hmac_deinit(h, NULL);
		return -1;
	}
	gnutls_hmac_deinit(h, mac);
	return 0;
}

void
seal_make(const struct seal_key *key, const char *message_id, long long case_id,
    const struct buf *cover, time_t when, char *out, size_t outlen)
{
	unsigned char mac[32];
	char hex[65];

	if (seal_mac(key, message_id, case_id, (long long)when, cover, mac) != 0) {
		snprintf(out, outlen, "v=1; invalid");
		return;
	}
	for (size_t i = 0; i < sizeof(mac); i++) {
		hex[2 * i] = hexdigits[mac[i] >> 4];
		hex[2 * i + 1] = hexdigits[mac[i] & 15];
	}
	hex[64] = '\0';
	snprintf(out, outlen, "v=1; t=%lld; c=%lld; s=%s", (long long)when, case_id, hex);
}

int
seal_verify(const struct seal_key *key, const char *value, const char *message_id,
    const struct buf *cover, time_t now, long long *case_id)
{
	long long when, cid;
	char hex[65];
	unsigned char mac[32], want[32];
	unsigned diff = 0;
	int used = 0;

	if (value == NULL || message_id == NULL || *message_id == '\0')
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	if (sscanf(value, "v=1; t=%lld; c=%lld; s=%64[0-9a-f]%n", &when, &cid, hex, &used) != 3 ||
	    strlen(hex) != 64)
		return 0;
	for (const char *p = value + used; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return 0;
	if (when > (long long)now + 3600 || when < (long long)now - SEAL_MAX_AGE || cid < 0)
		return 0;
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)(seal_hexval(hex[2 * i]) << 4 | seal_hexval(hex[2 * i + 1]));
	if (seal_mac(key, message_id, cid, when, cover, mac) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(mac); i++)
		diff |= (unsigned)(mac[i] ^ want[i]);
	if (diff != 0)
		return 0;
	if (case_id != NULL)
		*case_id = cid;
	return 1;
}
