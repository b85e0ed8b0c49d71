/*
 * html_text - reduce an HTML mail body to the plain text a person reads.
 *
 * Uses libxml2's error-recovering HTML parser (never the network), then
 * walks the tree without recursion: script, style, head, title and template
 * contents are dropped; br, p, div, li, tr, h1-h6, table, blockquote, pre,
 * hr ... become line breaks; td/th cells are separated by a tab; runs of
 * white space (including U+00A0) collapse to one space outside <pre>;
 * entities come out decoded.  Text inside <blockquote> gets a "> " prefix
 * per nesting level, so that quoted mail in HTML replies looks quoted to
 * the classifier, as it does in text/plain replies.
 *
 * Thread-safe: libxml2 is initialised once (pthread_once) on first use.
 */
#ifndef HG_HTML_TEXT_H
#define HG_HTML_TEXT_H

#include <stddef.h>

/* html[0..len) must be UTF-8 (the caller converts the charset first; any
 * <meta charset> in the document is ignored).  Returns at most max bytes of
 * text, NUL-terminated, never NULL; *outlen gets its length.  *truncated is
 * set to 1 when the text (or the input, past INT_MAX, or where the walk
 * that caps attributes could not follow libxml2: html_text.c) was cut,
 * else left alone.  The result is UTF-8 unless the input was not; callers that need
 * a guarantee sanitise it.  Caller frees. */
char	*html_text_extract(const char *html, size_t len, size_t max,
	    size_t *outlen, int *truncated);

#endif
