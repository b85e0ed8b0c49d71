/*
 * spool - degraded support mail waiting in SpoolDirectory for its case.
 *
 * The milter writes a file when the case store cannot take a support
 * message (spool_write); helpgate-worker replays the directory
 * (spool_list, spool_read, spool_parse) and helpgatectl stats counts it
 * (spool_is_name, spool_name_time).  The format is defined once, in
 * spool.c, so writer and readers cannot drift apart.
 */
#ifndef HG_SPOOL_H
#define HG_SPOOL_H

#include <dirent.h>
#include <stddef.h>

#include "buf.h"

#define SPOOL_SUFFIX		".msg"		/* a finished spool file: NAME.msg */
#define SPOOL_HEADER_MAX	(256 * 1024)	/* the milter's HEADER_BLOCK_MAX */
#define SPOOL_FIELDS_MAX	4096		/* the spool file's own header lines */

/* One degraded support message.  raw: the kept header block and body, not
 * NUL-terminated.  From spool_parse the strings point into the parsed
 * buffer. */
struct spool_record {
	long long	 received;	/* when the MTA accepted it */
	const char	*queue_id;	/* may be empty */
	const char	*envelope_from;	/* as the MTA gave it, with <> */
	const char	*support_address;
	int		 truncated;	/* the body was cut at MaxBodyScan */
	int		 staff_authenticated;	/* the MTA authenticated the sender as staff */
	const char	*raw;
	size_t		 raw_len;
};

/* Appends r's field lines and the blank line that ends them (not raw) to
 * b; -1 when b overflowed. */
int	spool_format_fields(struct buf *b, const struct spool_record *r);

/* Writes r atomically into dir (created if missing, one level); on success
 * the file's name (without dir) goes to name.  -1 with errno on failure. */
int	spool_write(const char *dir, const struct spool_record *r, char *name,
    size_t namelen);

/* Splits data (len bytes of untrusted input, modified in place) into r;
 * 0, or -1 when it is not a version 1 spool file. */
int	spool_parse(char *data, size_t len, struct spool_record *r);

/* Whether a directory entry is a finished spool file (NAME.msg, not a
 * hidden .tmp. file being written). */
int	spool_is_name(const char *name);

/* The finished spool files of dir in replay order (oldest first), as
 * scandir returns them; -1 when dir cannot be read. */
int	spool_list(const char *dir, struct dirent ***names);

/* The receive time a spool file's name starts with; -1 when it has none. */
int	spool_name_time(const char *name, long long *received);

/* Reads the whole file (at most max bytes) into a NUL-terminated heap
 * buffer; NULL with errno on failure. */
char   *spool_read(const char *path, size_t max, size_t *len);

#endif
