/*
 * milter_spool - support mail the case store could not take, kept for the
 * worker.
 *
 * A message tagged "degraded" was delivered at once, but no case was opened
 * for it.  What intake needs to open that case later is written to
 * SpoolDirectory, one file per message; helpgate-worker reads the directory
 * on every pass while its store works, runs the same intake
 * (intake_process) with the time the MTA accepted the message, and removes
 * the file.  The worker, not the milter, replays the spool: it already runs
 * a loop outside the mail path, so a replay never delays a message, and
 * while it replays the milter keeps taking new mail.
 *
 * File format (version 1), written here and read by worker/helpgate-worker.c
 * (spool_replay); a change here is a change there:
 *
 *   helpgate-spool 1\n
 *   received EPOCH\n
 *   queue-id QUEUEID\n               (may be empty)
 *   envelope-from ADDRESS\n          (as the MTA gave it, with <>)
 *   support-address ADDRESS\n
 *   truncated 0|1\n                  (the body was cut at MaxBodyScan)
 *   \n
 *   the message as the milter kept it: "Name: value\r\n" headers (forged
 *   X-Helpgate-* ones left out), "\r\n", at most MaxBodyScan bytes of body.
 *
 * Values never contain CR or LF (they are replaced by blanks).  Files are
 * written as .tmp.NAME, synced, then renamed to NAME.msg, so the worker
 * never sees half a file; NAME starts with the receive time so that a
 * sorted directory listing replays in arrival order.
 */
#include "milter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

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
milter_spool_write(const char *dir, const struct milter_spool_item *it, char *name,
    size_t namelen)
{
	char qid[32], base[128], tmp[4096], final[4096];
	struct buf head;
	unsigned long seq;
	size_t j = 0;
	int fd, saved;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return -1;
	/* the queue id in the name only helps a human; keep it to [A-Za-z0-9] */
	for (const char *p = it->queue_id ? it->queue_id : ""; *p && j < sizeof(qid) - 1; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			qid[j++] = *p;
	qid[j] = '\0';
	seq = __atomic_add_fetch(&spool_seq, 1, __ATOMIC_SEQ_CST);
	snprintf(base, sizeof(base), "%010lld.%s.%ld.%lu", (long long)it->received,
	    j ? qid : "NOQUEUE", (long)getpid(), seq);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp.%s", dir, base) >= sizeof(tmp) ||
	    (size_t)snprintf(final, sizeof(final), "%s/%s.msg", dir, base) >= sizeof(final)) {
		errno = ENAMETOOLONG;
		return -1;
	}

	buf_init(&head, 8192);
	buf_append_str(&head, "helpgate-spool 1\n");
	buf_printf(&head, "received %lld\n", (long long)it->received);
	spool_field(&head, "queue-id", it->queue_id);
	spool_field(&head, "envelope-from", it->envelope_from);
	spool_field(&head, "support-address", it->support_address);
	buf_printf(&head, "truncated %d\n\n", it->truncated ? 1 : 0);

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) == -1) {
		buf_free(&head);
		return -1;
	}
	if (head.truncated || spool_write_all(fd, buf_str(&head), head.len) != 0 ||
	    spool_write_all(fd, it->raw, it->raw_len) != 0 || fsync(fd) != 0) {
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
		snprintf(name, namelen, "%s.msg", base);
	return 0;
}
