/*
 * spool - the spool file format, for the milter that writes it and the
 * worker and helpgatectl that read it.
 *
 * A message tagged "degraded" was delivered at once, but no case was opened
 * for it.  What intake needs to open that case later is written to
 * SpoolDirectory, one file per message; helpgate-worker reads the directory
 * on every pass while its store works, runs the same intake
 * (intake_process) with the time the MTA accepted the message, and removes
 * the file.
 *
 * File format (version 1):
 *
 *   helpgate-spool 1\n
 *   received EPOCH\n
 *   queue-id QUEUEID\n               (may be empty)
 *   envelope-from ADDRESS\n          (as the MTA gave it, with <>)
 *   support-address ADDRESS\n
 *   truncated 0|1\n                  (the body was cut at MaxBodyScan)
 *   staff 0|1\n                      (the MTA authenticated the sender as
 *                                    staff; absent in older files: 0)
 *   \n
 *   the message as the milter kept it: "Name: value\r\n" headers (forged
 *   X-Helpgate-* ones left out), "\r\n", at most MaxBodyScan bytes of body.
 *
 * Values never contain CR or LF (they are replaced by blanks).  Files are
 * written as .tmp.NAME, synced, then renamed to NAME.msg, so the worker
 * never sees half a file; NAME starts with the receive time so that a
 * sorted directory listing replays in arrival order.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#define SPOOL_VERSION		"helpgate-spool"	/* first line: SPOOL_VERSION 1 */
#define SPOOL_RECEIVED		"received"
#define SPOOL_QUEUE_ID		"queue-id"
#define SPOOL_ENVELOPE_FROM	"envelope-from"
#define SPOOL_SUPPORT_ADDRESS	"support-address"
#define SPOOL_TRUNCATED		"truncated"
#define SPOOL_STAFF		"staff"

static unsigned long spool_seq;		/* names unique within the process */

/* Appends "key value\n" with CR and LF in value turned into blanks. */
static void
spool_field(struct buf *b, const char *key, const char *value)
{
	buf_append_str(b, key);
	buf_append_char(b, ' ');
	for (const char *p = value ? value : ""; *p; p++)
		buf_append_char(b, *p == '\r' || *p == '\n' ? ' ' : *p);
	buf_append_char(b, '\n');
}

int
spool_format_fields(struct buf *b, const struct spool_record *r)
{
	buf_append_str(b, SPOOL_VERSION " 1\n");
	buf_printf(b, SPOOL_RECEIVED " %lld\n", r->received);
	spool_field(b, SPOOL_QUEUE_ID, r->queue_id);
	spool_field(b, SPOOL_ENVELOPE_FROM, r->envelope_from);
	spool_field(b, SPOOL_SUPPORT_ADDRESS, r->support_address);
	buf_printf(b, SPOOL_TRUNCATED " %d\n", r->truncated ? 1 : 0);
	buf_printf(b, SPOOL_STAFF " %d\n\n", r->staff_authenticated ? 1 : 0);
	return b->truncated ? -1 : 0;
}

static int
spool_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
spool_write(const char *dir, const struct spool_record *r, char *name, size_t namelen)
{
	char qid[32], base[128], tmp[4096], final[4096];
	struct buf head;
	unsigned long seq;
	size_t j = 0;
	int fd, saved;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return -1;
	/* the queue id in the name only helps a human; keep it to [A-Za-z0-9] */
	for (const char *p = r->queue_id ? r->queue_id : ""; *p && j < sizeof(qid) - 1; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			qid[j++] = *p;
	qid[j] = '\0';
	seq = __atomic_add_fetch(&spool_seq, 1, __ATOMIC_SEQ_CST);
	snprintf(base, sizeof(base), "%010lld.%s.%ld.%lu", r->received,
	    j ? qid : "NOQUEUE", (long)getpid(), seq);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp.%s", dir, base) >= sizeof(tmp) ||
	    (size_t)snprintf(final, sizeof(final), "%s/%s" SPOOL_SUFFIX, dir, base) >= sizeof(final)) {
		errno = ENAMETOOLONG;
		return -1;
	}

	buf_init(&head, 8192);
	spool_format_fields(&head, r);

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) == -1) {
		buf_free(&head);
		return -1;
	}
	if (head.truncated || spool_write_all(fd, buf_str(&head), head.len) != 0 ||
	    spool_write_all(fd, r->raw, r->raw_len) != 0 || fsync(fd) != 0) {
		saved = head.truncated ? ENOSPC : errno;
		close(fd);
		unlink(tmp);
		buf_free(&head);
		errno = saved;
		return -1;
	}
	buf_free(&head);
	if (close(fd) != 0 || rename(tmp, final) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (name != NULL && namelen > 0)
		snprintf(name, namelen, "%s" SPOOL_SUFFIX, base);
	return 0;
}

int
spool_parse(char *data, size_t len, struct spool_record *r)
{
	char *line = data, *nl, *value, *end;
	int version = 0, have_received = 0;

	memset(r, 0, sizeof(*r));
	r->queue_id = r->envelope_from = r->support_address = "";
	for (;;) {
		if ((nl = memchr(line, '\n', len - (size_t)(line - data))) == NULL)
			return -1;
		*nl = '\0';
		if (line == nl)
			break;		/* the blank line: the message follows */
		if ((value = strchr(line, ' ')) == NULL)
			return -1;
		*value++ = '\0';
		if (strcmp(line, SPOOL_VERSION) == 0) {
			version = strcmp(value, "1") == 0;
		} else if (strcmp(line, SPOOL_RECEIVED) == 0) {
			errno = 0;
			r->received = strtoll(value, &end, 10);
			if (errno || end == value || *end || r->received <= 0)
				return -1;
			have_received = 1;
		} else if (strcmp(line, SPOOL_QUEUE_ID) == 0) {
			r->queue_id = value;
		} else if (strcmp(line, SPOOL_ENVELOPE_FROM) == 0) {
			r->envelope_from = value;
		} else if (strcmp(line, SPOOL_SUPPORT_ADDRESS) == 0) {
			r->support_address = value;
		} else if (strcmp(line, SPOOL_TRUNCATED) == 0) {
			r->truncated = strcmp(value, "1") == 0;
		} else if (strcmp(line, SPOOL_STAFF) == 0) {
			r->staff_authenticated = strcmp(value, "1") == 0;
		}			/* unknown lines: a later minor addition */
		line = nl + 1;
	}
	if (!version || !have_received || *r->support_address == '\0')
		return -1;
	r->raw = nl + 1;
	r->raw_len = len - (size_t)(r->raw - data);
	return 0;
}

int
spool_is_name(const char *name)
{
	size_t n = strlen(name), s = strlen(SPOOL_SUFFIX);

	return name[0] != '.' && n > s && strcmp(name + n - s, SPOOL_SUFFIX) == 0;
}

static int
spool_select(const struct dirent *d)
{
	return spool_is_name(d->d_name);
}

int
spool_list(const char *dir, struct dirent ***names)
{
	return scandir(dir, names, spool_select, alphasort);
}

int
spool_name_time(const char *name, long long *received)
{
	char *end;

	*received = strtoll(name, &end, 10);
	return end == name ? -1 : 0;
}

char *
spool_read(const char *path, size_t max, size_t *len)
{
	struct stat st;
	char *data;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return NULL;
	}
	if (st.st_size < 0 || (size_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	*len = got;
	return data;
}
