/* Mail helpgate writes: nothing from a client can inject a header, lines
 * stay within limits, and non-ASCII text survives as RFC 2047 and QP. */
#include <stdlib.h>

#include "compose.h"
#include "msg.h"
#include "t.h"

static size_t
longest_line(const char *s)
{
	size_t best = 0, cur = 0;

	for (; *s; s++) {
		if (*s == '\n') {
			if (cur > best)
				best = cur;
			cur = 0;
		} else if (*s != '\r') {
			cur++;
		}
	}
	return cur > best ? cur : best;
}

static int
count_lines_starting(const char *s, const char *prefix)
{
	int n = 0;
	size_t len = strlen(prefix);

	for (const char *p = s; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, len) == 0)
			n++;
		if (*p == '\0')
			break;
	}
	return n;
}

int
main(void)
{
	char *s, *m, *qp;

	s = compose_sanitize("a\r\nBcc: victim@example.com\0ignored");
	T_EQ_STR(s, "a Bcc: victim@example.com");
	free(s);
	s = compose_sanitize("  lots   of\tspace  ");
	T_EQ_STR(s, "lots of space");
	free(s);

	qp = compose_qp_encode("Привет, мир = hello\n.leading dot\nFrom here\ntrailing space \n");
	T_CONTAINS(qp, "=D0=9F=D1=80=D0=B8");
	T_CONTAINS(qp, "=3D hello");
	T_CONTAINS(qp, "=2Eleading dot");
	T_CONTAINS(qp, "=46rom here");
	T_CONTAINS(qp, "trailing space=20\r\n");
	T_CHECK(longest_line(qp) <= 76);
	free(qp);
	{
		char big[4000];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		qp = compose_qp_encode(big);
		T_CHECK(longest_line(qp) <= 76);
		free(qp);
	}

	struct compose_header extra[] = { { "X-Helpgate-Case", "HG-7\r\nBcc: evil@example.com" } };
	struct compose c = {
		.from_address = "support@example.com",
		.from_name = "Служба поддержки",
		.to_address = "client@client.test>\r\nBcc: evil@example.com",
		.subject = "Re: [HG-7] Не отправляются письма\r\nBcc: evil@example.com — очень длинная тема "
		    "письма, которая не помещается в одну строку заголовка и должна быть перенесена",
		.message_id = "hg-7.ack.abc@example.com",
		.in_reply_to = "orig@client.test",
		.references = "a@x b@y orig@client.test",
		.date = 1764486000,
		.extra = extra,
		.extra_count = 1,
		.body = "Здравствуйте!\nВаша заявка HG-7.\n",
	};
	m = compose_message(&c);
	T_EQ_INT(count_lines_starting(m, "Bcc:"), 0);
	T_EQ_INT(count_lines_starting(m, "Subject: "), 1);
	T_CONTAINS(m, "Subject: =?UTF-8?B?");
	T_CONTAINS(m, "From: =?UTF-8?B?");
	T_CONTAINS(m, "<support@example.com>");
	T_CONTAINS(m, "Message-ID: <hg-7.ack.abc@example.com>\r\n");
	T_CONTAINS(m, "In-Reply-To: <orig@client.test>\r\n");
	T_CONTAINS(m, "References: <a@x> <b@y> <orig@client.test>\r\n");
	T_CONTAINS(m, "Content-Transfer-Encoding: quoted-printable");
	T_CHECK(longest_line(m) <= 78);
	/* Every line ends in CRLF: no bare LF. */
	int bare = 0;
	for (const char *p = m; *p; p++)
		if (*p == '\n' && (p == m || p[-1] != '\r'))
			bare++;
	T_EQ_INT(bare, 0);
	/* The subject decodes back to what was meant, minus the CR LF. */
	struct msg *parsed = msg_parse(m, strlen(m), 65536);
	T_CONTAINS(parsed->subject, "Re: [HG-7] Не отправляются письма Bcc: evil@example.com — очень");
	T_CONTAINS(parsed->text, "Ваша заявка HG-7.");
	T_EQ_STR(parsed->in_reply_to, "orig@client.test");
	T_EQ_STR(msg_header(parsed, "X-Helpgate-Case"), "HG-7 Bcc: evil@example.com");
	msg_free(parsed);
	free(m);

	/* A display name with specials becomes a quoted-string. */
	struct compose c2 = { .from_address = "support@example.com", .from_name = "Acme, Inc. \"Support\"",
	    .to_address = "a@b.test", .subject = "x", .message_id = "x@y", .date = 0, .body = "x" };
	m = compose_message(&c2);
	T_CONTAINS(m, "From: \"Acme, Inc. \\\"Support\\\"\" <support@example.com>\r\n");
	free(m);
	return t_done();
}
