#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#define RELAY_CONNECT_TIMEOUT	10L
#define RELAY_TOTAL_TIMEOUT	120L

struct relay {
	CURL	*curl;
	char	*url;
	char	*user;
	char	*password;
	char	 last_reply[256];	/* the relay's last refusal (4xx/5xx) */
	long	 last_code;
};

long
relay_last_reply(const struct relay *r)
{
	return r->last_code;
}

struct upload {
	const char *data;
	size_t	    len;
	size_t	    pos;
};

static size_t
relay_read(char *out, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb;

	if (n > u->len - u->pos)
		n = u->len - u->pos;
	memcpy(out, u->data + u->pos, n);
	u->pos += n;
	return n;
}

/* Keeps the relay's last 4xx/5xx reply, the one that explains a refusal
 * (libcurl's QUIT gets a "221" afterwards, which explains nothing). */
static int
relay_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *arg)
{
	struct relay *r = arg;
	size_t n;

	(void)curl;
	if (type != CURLINFO_HEADER_IN || size == 0 || (data[0] != '4' && data[0] != '5'))
		return 0;
	n = size < sizeof(r->last_reply) - 1 ? size : sizeof(r->last_reply) - 1;
	memcpy(r->last_reply, data, n);
	while (n > 0 && (r->last_reply[n - 1] == '\r' || r->last_reply[n - 1] == '\n'))
		n--;
	r->last_reply[n] = '\0';
	return 0;
}

/* "user:password" from a file only its owner can read. */
static int
relay_read_credentials(const char *path, char **user, char **password, char *err, size_t errlen)
{
	char line[1024];
	struct stat st;
	FILE *fp;
	char *colon;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "RelayCredentials %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "RelayCredentials %s must not be readable by group or others "
		    "(chmod 600)", path);
		close(fd);
		return -1;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL || fgets(line, sizeof(line), fp) == NULL) {
		snprintf(err, errlen, "RelayCredentials %s is empty", path);
		if (fp) fclose(fp); else close(fd);
		return -1;
	}
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	if ((colon = strchr(line, ':')) == NULL || colon == line) {
		snprintf(err, errlen, "RelayCredentials %s: want user:password on the first line", path);
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	*colon = '\0';
	*user = xstrdup(line);
	*password = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

struct relay *
relay_open(const struct config *cfg, char *err, size_t errlen)
{
	struct relay *r;

	if (cfg->relay == NULL) {
		snprintf(err, errlen, "no Relay configured");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->url = xstrdup(cfg->relay);
	if (cfg->relay_credentials != NULL &&
	    relay_read_credentials(cfg->relay_credentials, &r->user, &r->password, err, errlen) != 0) {
		relay_close(r);
		return NULL;
	}
	if ((r->curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		relay_close(r);
		return NULL;
	}
	return r;
}

void
relay_close(struct relay *r)
{
	if (r == NULL)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->user);
	free(r->url);
	free(r);
}

enum relay_result
relay_send(struct relay *r, const char *envelope_from, const char *recipient,
    const char *content, char *err, size_t errlen)
{
	struct curl_slist *rcpt = NULL;
	struct upload up = { content, strlen(content), 0 };
	char from[330], to[330];
	long reply = 0;
	CURLcode rc;
	CURL *c = r->curl;

	curl_easy_reset(c);
	r->last_reply[0] = '\0';
	snprintf(from, sizeof(from), "<%s>", envelope_from);
	snprintf(to, sizeof(to), "<%s>", recipient);
	rcpt = curl_slist_append(rcpt, to);
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, relay_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, RELAY_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, RELAY_TOTAL_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, relay_debug);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, r);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);	/* feeds relay_debug only */
	if (r->user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, r->password);
		if (strncasecmp(r->url, "smtp://", 7) == 0)
			curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
	r->last_code = reply;
	curl_slist_free_all(rcpt);

	if (rc == CURLE_OK)
		return RELAY_SENT;
	snprintf(err, errlen, "%s%s%s", curl_easy_strerror(rc),
	    r->last_reply[0] ? ": " : "", r->last_reply);
	/* Only a definite 5xx from the relay is final; anything else (no
	 * connection, timeout, 4xx, TLS trouble) may pass. */
	if (reply >= 500 && reply < 600 && rc != CURLE_LOGIN_DENIED)
		return RELAY_PERMFAIL;
	return RELAY_TEMPFAIL;
}

const char *
relay_describe(const char *url, char *out, size_t outlen)
{
	const char *scheme_end, *host, *at, *slash;

	if (url == NULL) {
		snprintf(out, outlen, "(none: nothing is sent)");
		return out;
	}
	scheme_end = strstr(url, "://");
	host = scheme_end ? scheme_end + 3 : url;
	slash = strchr(host, '/');
	at = strchr(host, '@');
	if (at != NULL && (slash == NULL || at < slash))
		host = at + 1;
	snprintf(out, outlen, "%.*s%.*s", scheme_end ? (int)(scheme_end + 3 - url) : 0, url,
	    slash ? (int)(slash - host) : (int)strlen(host), host);
	return out;
}
