/*
 * xalloc - allocation policy for all of helpgate.
 *
 * Policy (decided once, as Postfix's mymalloc does): running out of memory
 * is fatal.  The daemons log the failure and exit; the MTA keeps the mail
 * (the milter is configured with milter_default_action = accept) and the
 * worker resumes from the database after a restart, so nothing is lost.
 * Callers never test these for NULL.
 */
#ifndef HG_XALLOC_H
#define HG_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
