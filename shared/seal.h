/*
 * seal - X-Helpgate-Seal, how helpgate's own mail proves itself.
 *
 * Anyone can write X-Helpgate-* headers into a message.  The milter deletes
 * them from every message it sees, except from mail that carries a valid
 * seal: an HMAC-SHA256, under a key only the daemons can read
 * (SealKeyFile), of the message's Message-ID, its case, the time it was
 * sealed and the headers it vouches for (seal_cover_add): a client who
 * holds a sealed acknowledgement cannot add an X-Helpgate-Notice to it, or
 * change its Subject, and send it on to staff as helpgate's own.  The worker seals every letter it composes; the milter verifies
 * before it keeps the letter's headers or takes it as whole in the relay
 * (relay_seen).  Staff mail filters may then trust X-Helpgate-* headers on
 * mail that passed the milter.
 *
 * Header value: "v=1; t=EPOCH; c=CASE; s=HEX64".
 */
#ifndef HG_SEAL_H
#define HG_SEAL_H

#include <stddef.h>
#include <time.h>

struct buf;

#define SEAL_KEY_LEN	32
#define SEAL_VALUE_MAX	128
#define SEAL_MAX_AGE	(8 * 86400)	/* the outbox retries for 5 days */
#define SEAL_COVER_MAX	(64 * 1024)	/* a cover that outgrows it verifies never */

struct seal_key {
	unsigned char	bytes[SEAL_KEY_LEN];
};

/* Reads the key from path (64 hex digits), making it first when the file
 * does not exist (random, mode 0600, written whole before anyone can read
 * it).  0, or -1 with a reason in err. */
int	seal_key_load(const char *path, struct seal_key *key, char *err, size_t errlen);

/* Called with every header of a message in order (cover made with
 * buf_init(cover, SEAL_COVER_MAX)): the Subject and every X-Helpgate-*
 * header but the seal go into the cover, name in lower case, value with
 * its whitespace runs made one space, so that an MTA's refolding does not
 * break the seal while any header added or changed does. */
void	seal_cover_add(struct buf *cover, const char *name, const char *value);

/* The X-Helpgate-Seal value for a message (message_id without <>) whose
 * headers made cover. */
void	seal_make(const struct seal_key *key, const char *message_id, long long case_id,
    const struct buf *cover, time_t when, char *out, size_t outlen);

/* 1 when value seals message_id (with or without <>) and cover, and is no
 * older than SEAL_MAX_AGE at now; *case_id gets its case.  0 otherwise. */
int	seal_verify(const struct seal_key *key, const char *value, const char *message_id,
    const struct buf *cover, time_t now, long long *case_id);

#endif
