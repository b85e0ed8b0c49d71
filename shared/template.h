/*
 * template - the text of every message helpgate writes lives in
 * conf/templates/, never in C, so that support staff can change the words.
 *
 * Syntax, deliberately tiny:
 *   {{name}}                 replaced by the variable's value
 *   {{#name}} ... {{/name}}  kept only when the variable is non-empty
 *   {{^name}} ... {{/name}}  kept only when the variable is empty
 * Variables are looked up through a callback; a name the callback does not
 * know is an error, so a typo in a template is found by `config check`
 * (template_check) rather than shown to a client.  Values are inserted as
 * they are (UTF-8 text; the caller sanitises anything from a client).
 */
#ifndef HG_TEMPLATE_H
#define HG_TEMPLATE_H

#include <stddef.h>

#include "buf.h"

/* Returns the value (may be "") or NULL when the name is not a variable. */
typedef const char *(*template_lookup_fn)(const char *name, void *arg);

/* Renders text into out.  Returns 0, or -1 with a message in err
 * ("line N: unknown variable {{x}}", "line N: {{#x}} is not closed"). */
int	template_render(const char *text, template_lookup_fn lookup, void *arg,
	    struct buf *out, char *err, size_t errlen);

/* Reads dir/name into a new string (caller frees); NULL if unreadable. */
char   *template_read(const char *dir, const char *name);

#endif
