/*
 * nameset - a set of header names, case-insensitive, with a count each.
 *
 * The milter deletes every X-Helpgate-* header a sender wrote, by name and
 * index, however many there are: a message with 64k distinct forged names
 * must cost linear time, so names are hashed (FNV-1a over the lowercased
 * bytes, open addressing, doubled at half load), never searched in a list.
 */
#ifndef HG_NAMESET_H
#define HG_NAMESET_H

#include <stddef.h>

struct nameset_entry {
	char	*name;		/* as first seen */
	int	 count;
};

struct nameset {
	struct nameset_entry	*slots;
	size_t			 cap;		/* a power of two, or 0 */
	size_t			 used;
};

/* Counts one more header called name; returns its count so far. */
int	nameset_add(struct nameset *set, const char *name);
/* Calls fn for every name with its count (in no particular order). */
void	nameset_each(const struct nameset *set, void (*fn)(const char *name, int count, void *arg),
    void *arg);
void	nameset_clear(struct nameset *set);	/* frees everything; the set is empty again */

#endif
