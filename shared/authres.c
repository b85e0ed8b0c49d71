/*
 * authres - Authentication-Results (RFC 8601) and the From check
 * (authres.h).
 *
 * The organisational domain comes from libpsl (the Public Suffix List that
 * Debian keeps current in the publicsuffix package), as DMARC defines it.
 */
#include "authres.h"

#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg.h"

#define AUTHRES_MAX_RESULTS	32	/* per header; the rest is not read */
#define AUTHRES_MAX_HEADERS	16	/* trusted headers read per message */

static const psl_ctx_t *authres_psl;
static pthread_once_t authres_psl_once = PTHREAD_ONCE_INIT;

static void
authres_psl_init(void)
{
	/* the newer of libpsl's built-in list and /usr/share/publicsuffix */
	authres_psl = psl_latest(NULL);
	if (authres_psl == NULL)
		authres_psl = psl_builtin();
}

static void
lower_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t i;

	if (dstlen == 0)
		return;
	for (i = 0; i < n && i + 1 < dstlen; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

void
authres_org_domain(const char *domain, char *out, size_t outlen)
{
	const char *reg = NULL;

	pthread_once(&authres_psl_once, authres_psl_init);
	if (authres_psl != NULL)
		reg = psl_registrable_domain(authres_psl, domain);
	/* a public suffix itself, or no list: the name as it is */
	lower_copy(out, outlen, reg ? reg : domain, strlen(reg ? reg : domain));
}

/* value without (comments), nested and with \-escapes, and with the blanks
 * around "=" and "." dropped, so that "dkim = pass" reads as "dkim=pass".
 * Quoted strings are kept as they are.  Linear. */
static char *
authres_clean(const char *value)
{
	size_t n = strlen(value), o = 0;
	char *out = malloc(n + 1);
	int depth = 0, quoted = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = value[i];

		if (quoted) {
			out[o++] = c;
			if (c == '\\' && i + 1 < n)
				out[o++] = value[++i];
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '"')
			quoted = 1;
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c == ' ' && o > 0 && (out[o - 1] == '=' || out[o - 1] == '.' || out[o - 1] == ' '))
			continue;
		if ((c == '=' || c == '.') && o > 0 && out[o - 1] == ' ')
			o--;
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

/* The domain of an identity: "user@example.com", "@example.com" or
 * "example.com", without quotes or <>. */
static void
authres_identity_domain(const char *v, size_t n, char *out, size_t outlen)
{
	const char *at;

	while (n > 0 && (*v == '"' || *v == '<')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '"' || v[n - 1] == '>'))
		n--;
	at = memchr(v, '@', n);
	if (at != NULL) {
		n -= (size_t)(at + 1 - v);
		v = at + 1;
	}
	lower_copy(out, outlen, v, n);
}

/* One "; method=result props..." segment [s, e) into r; 0 if it is none. */
static int
authres_resinfo(const char *s, const char *e, struct authres_result *r)
{
	const char *p = s, *tok, *eq;
	int first = 1;

	memset(r, 0, sizeof(*r));
	while (p < e) {
		while (p < e && *p == ' ')
			p++;
		tok = p;
		while (p < e && *p != ' ') {
			if (*p == '"') {	/* a quoted value: to its closing quote */
				for (p++; p < e && *p != '"'; p++)
					if (*p == '\\' && p + 1 < e)
						p++;
			}
			if (p < e)
				p++;
		}
		if (p == tok)
			break;
		eq = memchr(tok, '=', (size_t)(p - tok));
		if (eq == NULL)
			continue;
		if (first) {
			lower_copy(r->method, sizeof(r->method), tok, (size_t)(eq - tok));
			lower_copy(r->result, sizeof(r->result), eq + 1, (size_t)(p - eq - 1));
			first = 0;
			continue;
		}
		size_t klen = (size_t)(eq - tok);
		const char *v = eq + 1;
		size_t vlen = (size_t)(p - v);
		if ((klen == 8 && strncasecmp(tok, "header.d", 8) == 0) ||
		    (klen == 13 && strncasecmp(tok, "smtp.mailfrom", 13) == 0) ||
		    (klen == 11 && strncasecmp(tok, "header.from", 11) == 0)) {
			authres_identity_domain(v, vlen, r->domain, sizeof(r->domain));
		} else if (klen == 8 && strncasecmp(tok, "header.i", 8) == 0 && r->domain[0] == '\0') {
			authres_identity_domain(v, vlen, r->domain, sizeof(r->domain));
		}
	}
	return r->method[0] != '\0';
}

size_t
authres_parse(const char *value, char *authserv_id, size_t idlen, struct authres_result *out,
    size_t max)
{
	char *clean = authres_clean(value ? value : "");
	const char *p, *seg, *end;
	size_t count = 0;
	int quoted = 0;

	if (idlen > 0)
		authserv_id[0] = '\0';
	if (clean == NULL)
		return 0;
	p = clean;
	while (*p == ' ')
		p++;
	seg = p;
	while (*p && *p != ' ' && *p != ';')
		p++;
	lower_copy(authserv_id, idlen, seg, (size_t)(p - seg));
	/* the resinfo segments, each after a ';' outside quotes */
	seg = NULL;
	for (;; p++) {
		if (*p == '"' && (p == clean || p[-1] != '\\'))
			quoted = !quoted;
		if ((*p == ';' && !quoted) || *p == '\0') {
			end = p;
			if (seg != NULL && count < max && authres_resinfo(seg, end, &out[count]))
				count++;
			if (*p == '\0')
				break;
			seg = p + 1;
		}
	}
	free(clean);
	return count;
}

static int
authres_trusted(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->trusted_authserv_ids.count; i++)
		if (strcasecmp(cfg->trusted_authserv_ids.items[i], id) == 0)
			return 1;
	return 0;
}

static int
authres_aligned(const char *a, const char *b)
{
	char oa[256], ob[256];

	if (a[0] == '\0' || b[0] == '\0')
		return 0;
	authres_org_domain(a, oa, sizeof(oa));
	authres_org_domain(b, ob, sizeof(ob));
	return strcmp(oa, ob) == 0;
}

enum authres_verdict
authres_check(const struct config *cfg, const struct msg *m, const char *envelope_from,
    char *reason, size_t reasonlen)
{
	struct authres_result r[AUTHRES_MAX_RESULTS];
	char from_domain[256], env_domain[256], id[256];
	const char *at;
	int trusted = 0, dmarc_fail = 0, headers = 0;

	if (cfg->ack_policy == CONFIG_ACK_ANY) {
		snprintf(reason, reasonlen, "policy-any");
		return AUTHRES_VERIFIED;
	}
	at = m->from_address ? strrchr(m->from_address, '@') : NULL;
	if (at == NULL || at[1] == '\0') {
		snprintf(reason, reasonlen, "no-from");
		return AUTHRES_UNVERIFIED;
	}
	lower_copy(from_domain, sizeof(from_domain), at + 1, strlen(at + 1));

	for (size_t h = 0; h < m->header_count && headers < AUTHRES_MAX_HEADERS; h++) {
		if (strcasecmp(m->headers[h].name, "Authentication-Results") != 0)
			continue;
		size_t n = authres_parse(m->headers[h].raw, id, sizeof(id), r, AUTHRES_MAX_RESULTS);
		if (!authres_trusted(cfg, id))
			continue;
		headers++;
		for (size_t i = 0; i < n; i++) {
			trusted = 1;
			if (strcmp(r[i].method, "dmarc") == 0) {
				if (strcmp(r[i].result, "pass") == 0 && authres_aligned(r[i].domain, from_domain)) {
					snprintf(reason, reasonlen, "dmarc-pass");
					return AUTHRES_VERIFIED;
				}
				if (strcmp(r[i].result, "fail") == 0)
					dmarc_fail = 1;
				continue;
			}
			if (cfg->ack_policy == CONFIG_ACK_DMARC || strcmp(r[i].result, "pass") != 0)
				continue;
			if (strcmp(r[i].method, "dkim") == 0 && authres_aligned(r[i].domain, from_domain)) {
				snprintf(reason, reasonlen, "dkim-aligned");
				return AUTHRES_VERIFIED;
			}
			if (strcmp(r[i].method, "spf") == 0 && authres_aligned(r[i].domain, from_domain)) {
				snprintf(reason, reasonlen, "spf-aligned");
				return AUTHRES_VERIFIED;
			}
		}
	}
	if (dmarc_fail) {
		snprintf(reason, reasonlen, "dmarc-fail");
		return AUTHRES_UNVERIFIED;
	}
	if (cfg->ack_policy == CONFIG_ACK_DMARC) {
		snprintf(reason, reasonlen, "no-dmarc-result");
		return AUTHRES_UNVERIFIED;
	}
	if (!trusted) {
		/* no trusted results at all: the envelope sender is all we have */
		at = envelope_from ? strrchr(envelope_from, '@') : NULL;
		authres_identity_domain(at ? at + 1 : "", at ? strlen(at + 1) : 0, env_domain,
		    sizeof(env_domain));
		if (authres_aligned(env_domain, from_domain)) {
			snprintf(reason, reasonlen, "envelope-aligned");
			return AUTHRES_VERIFIED;
		}
	}
	snprintf(reason, reasonlen, "not-aligned");
	return AUTHRES_UNVERIFIED;
}
