/*
 * chart - bars and lines as PNG with cairo (see chart.h).
 */
#include <cairo.h>
#include <stdio.h>
#include <string.h>

#include "chart.h"

static cairo_status_t
chart_write(void *closure, const unsigned char *data, unsigned int length)
{
	return buf_append(closure, data, length) == 0 ? CAIRO_STATUS_SUCCESS :
	    CAIRO_STATUS_WRITE_ERROR;
}

static void
chart_text(cairo_t *cr, double x, double y, const char *s, double size, int centre, int bold)
{
	cairo_text_extents_t te;

	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
	    bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
	cairo_text_extents(cr, s, &te);
	cairo_move_to(cr, centre ? x - te.width / 2 - te.x_bearing : x, y);
	cairo_show_text(cr, s);
}

int
chart_png(enum chart_kind kind, const char *title, const struct chart_point *p, size_t n,
    double max, int width, int height, struct buf *png)
{
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
	cairo_t *cr = cairo_create(sf);
	const double top = 34, bottom = kind == CHART_HBARS ? 12 : 30, left = kind == CHART_HBARS ?
	    130 : 16, right = kind == CHART_HBARS ? 50 : 16;
	const double pw = width - left - right, ph = height - top - bottom;
	cairo_status_t st;

	if (max <= 0)
		for (size_t i = 0; i < n; i++)
			if (p[i].value > max)
				max = p[i].value;
	if (max <= 0)
		max = 1;
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0.15, 0.2, 0.22);
	chart_text(cr, 12, 22, title, 14, 0, 1);
	/* the axis line the bars stand on */
	cairo_set_source_rgb(cr, 0.8, 0.85, 0.87);
	cairo_set_line_width(cr, 1);
	if (kind == CHART_HBARS) {
		cairo_move_to(cr, left + 0.5, top);
		cairo_line_to(cr, left + 0.5, top + ph);
	} else {
		cairo_move_to(cr, left, top + ph + 0.5);
		cairo_line_to(cr, left + pw, top + ph + 0.5);
	}
	cairo_stroke(cr);
	for (size_t i = 0; i < n; i++) {
		double v = p[i].value < 0 ? 0 : p[i].value / max;

		if (kind == CHART_HBARS) {
			double slot = ph / (double)n, y = top + slot * (double)i, h = slot * 0.7;

			cairo_set_source_rgb(cr, 0.08, 0.4, 0.75);
			cairo_rectangle(cr, left + 1, y + slot * 0.15, v * pw, h);
			cairo_fill(cr);
			cairo_set_source_rgb(cr, 0.15, 0.2, 0.22);
			chart_text(cr, 8, y + slot * 0.15 + h * 0.75, p[i].label, 11, 0, 0);
			chart_text(cr, left + v * pw + 6, y + slot * 0.15 + h * 0.75, p[i].text, 11, 0, 1);
			continue;
		}
		double slot = pw / (double)n, x = left + slot * (double)i + slot / 2;
		double y = top + ph - v * ph;

		if (kind == CHART_BARS) {
			cairo_set_source_rgb(cr, 0.08, 0.4, 0.75);
			if (p[i].value >= 0) {
				cairo_rectangle(cr, x - slot * 0.35, y, slot * 0.7, v * ph);
				cairo_fill(cr);
			}
		} else if (p[i].value >= 0) {
			/* the line joins the weeks that have a value */
			size_t j = i;

			while (j > 0 && p[j - 1].value < 0)
				j--;
			cairo_set_source_rgb(cr, 0.9, 0.32, 0);
			cairo_set_line_width(cr, 2.5);
			if (j > 0 || (i > 0 && p[i - 1].value >= 0)) {
				size_t k = i - 1;
				double px, py;

				while (k > 0 && p[k].value < 0)
					k--;
				if (p[k].value >= 0) {
					px = left + slot * (double)k + slot / 2;
					py = top + ph - p[k].value / max * ph;
					cairo_move_to(cr, px, py);
					cairo_line_to(cr, x, y);
					cairo_stroke(cr);
				}
			}
			cairo_arc(cr, x, y, 4, 0, 6.2832);
			cairo_fill(cr);
		}
		cairo_set_source_rgb(cr, 0.15, 0.2, 0.22);
		chart_text(cr, x, top + ph + 18, p[i].label, 10, 1, 0);
		if (p[i].value >= 0 && p[i].text && *p[i].text)
			chart_text(cr, x, (y - 6 < top + 10 ? top + 10 : y - 6), p[i].text, 10, 1, 1);
	}
	cairo_destroy(cr);
	cairo_surface_flush(sf);
	st = cairo_surface_write_to_png_stream(sf, chart_write, png);
	cairo_surface_destroy(sf);
	return st == CAIRO_STATUS_SUCCESS ? 0 : -1;
}
