/*
 * letter - small pieces every letter to people is written with: a time
 * span as people say it, a text cell cut to a width, HTML escaping.
 */
#ifndef HG_LETTER_H
#define HG_LETTER_H

#include <stddef.h>

#include "buf.h"

/* "<1m", "12m", "4h05m", "2d03h" for |secs|. */
void	letter_span(long long secs, char *out, size_t outlen);
/* Appends s cut to width characters (UTF-8), control characters as spaces. */
void	letter_text_cell(struct buf *b, const char *s, size_t width);
/* Appends s with & < > " ' escaped and control characters as spaces. */
void	letter_html_escape(struct buf *b, const char *s);

#endif
