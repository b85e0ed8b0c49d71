#include "clock.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

int
clock_parse_iso8601(const char *s, time_t *out)
{
	struct tm tm;
	int year, mon, day, hour, min, sec = 0, n = 0;
	const char *p;
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '@') {
		long long v = strtoll(s + 1, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (end == s + 1 || *end != '\0')
			return -1;
		*out = (time_t)v;
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &year, &mon, &day, &n) != 3 || n != 10)
		return -1;
	p = s + n;
	hour = min = 0;
	if (*p == 'T' || *p == ' ') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hour, &min, &m) != 2 || m != 5)
			return -1;
		p += 1 + m;
		if (*p == ':') {
			if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
				return -1;
			sec = (p[1] - '0') * 10 + (p[2] - '0');
			p += 3;
		}
	}
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		tm.tm_isdst = -1;
		*out = mktime(&tm);
		return *out == (time_t)-1 ? -1 : 0;
	}
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om = 0, m = 0;
		if (sscanf(p + 1, "%2d%n", &oh, &m) != 1 || m != 2)
			return -1;
		p += 3;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
			om = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
		if (oh > 23 || om > 59)
			return -1;
		offset = sign * (oh * 3600L + om * 60L);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*out = timegm(&tm) - offset;
	return 0;
}

static int
clock_read_override(const char *value, time_t *out)
{
	char line[128];
	FILE *fp;

	if (value[0] != '/')
		return clock_parse_iso8601(value, out);
	if ((fp = fopen(value, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	return clock_parse_iso8601(line, out);
}

time_t
clock_now(void)
{
	static int warned;
	const char *value = getenv("HELPGATE_NOW");
	time_t t;

	if (value != NULL && *value != '\0') {
		if (clock_read_override(value, &t) == 0)
			return t;
		if (!warned) {
			warned = 1;
			log_warnx("HELPGATE_NOW=%s is not a time; using the system clock", value);
		}
	}
	return time(NULL);
}

void
clock_format_rfc5322(time_t t, char *out, size_t outlen)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11) {
		snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	    labs(off) / 60, labs(off) % 60);
}

void
clock_format_iso8601(time_t t, char *out, size_t outlen)
{
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	off = tm.tm_gmtoff / 60;
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

int
clock_set_timezone(const char *iana_name)
{
	char path[512];
	struct stat st;

	if (strcmp(iana_name, "UTC") != 0) {
		if (iana_name[0] == '\0' || iana_name[0] == '/' || strstr(iana_name, ".."))
			return -1;
		snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", iana_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			return -1;
	}
	if (setenv("TZ", iana_name, 1) != 0)
		return -1;
	tzset();
	return 0;
}
