/*
 * nameset - header names with counts (nameset.h).
 */
#include "nameset.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "xalloc.h"

static uint64_t
nameset_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding name, or the empty slot where it belongs. */
static struct nameset_entry *
nameset_slot(struct nameset_entry *slots, size_t cap, const char *name)
{
	size_t i = (size_t)nameset_hash(name) & (cap - 1);

	while (slots[i].name != NULL && strcasecmp(slots[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void
nameset_grow(struct nameset *set)
{
	size_t cap = set->cap ? set->cap * 2 : 16;
	struct nameset_entry *slots = xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i < set->cap; i++)
		if (set->slots[i].name != NULL)
			*nameset_slot(slots, cap, set->slots[i].name) = set->slots[i];
	free(set->slots);
	set->slots = slots;
	set->cap = cap;
}

int
nameset_add(struct nameset *set, const char *name)
{
	struct nameset_entry *e;

	if ((set->used + 1) * 2 > set->cap)
		nameset_grow(set);
	e = nameset_slot(set->slots, set->cap, name);
	if (e->name == NULL) {
		e->name = xstrdup(name);
		set->used++;
	}
	return ++e->count;
}

void
nameset_each(const struct nameset *set, void (*fn)(const char *, int, void *), void *arg)
{
	for (size_t i = 0; i < set->cap; i++)
		if (set->slots[i].name != NULL)
			fn(set->slots[i].name, set->slots[i].count, arg);
}

void
nameset_clear(struct nameset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i].name);
	free(set->slots);
	set->slots = NULL;
	set->cap = set->used = 0;
}
