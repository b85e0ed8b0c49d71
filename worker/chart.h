/*
 * chart - the weekly report's pictures: bars and a line, drawn with cairo
 * into PNG bytes (inline parts of the letter), each value also written on
 * the chart so that the picture can be read without the table beside it.
 */
#ifndef HG_CHART_H
#define HG_CHART_H

#include <stddef.h>

#include "buf.h"

struct chart_point {
	const char	*label;		/* under the bar or point ("W47", "login") */
	double		 value;		/* < 0: no value (nothing that week) */
	const char	*text;		/* written at the bar or point ("83%") */
};

enum chart_kind { CHART_BARS, CHART_HBARS, CHART_LINE };

/* Appends a PNG of width x height pixels to png; max is the value axis's
 * top (0: the largest value).  0, or -1 when cairo failed. */
int	chart_png(enum chart_kind kind, const char *title, const struct chart_point *p, size_t n,
	    double max, int width, int height, struct buf *png);

#endif
