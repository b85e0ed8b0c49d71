/*
 * test_mailcmd - staff commands at the top of a mail (shared/mailcmd.c):
 * what is a command, what is the client's text, exact errors, and that
 * nothing reads past the end or costs more than linear time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mailcmd.h"
#include "msg.h"
#include "t.h"

static struct mailcmd_list L;

static size_t
parse(const char *s)
{
	return mailcmd_parse(s, strlen(s), &L);
}

static void
test_commands(void)
{
	T_EQ_INT((int)parse("#assign me\n#wait\n\nDear client,\nwe are on it.\n"), 2);
	T_EQ_INT(L.v[0].kind, MAILCMD_ASSIGN);
	T_EQ_STR(L.v[0].arg, "me");
	T_EQ_INT(L.v[1].kind, MAILCMD_WAIT);
	T_EQ_INT(L.only_commands, 0);
	T_EQ_INT((int)L.block_end, (int)strlen("#assign me\n#wait\n"));

	T_EQ_INT((int)parse("\r\n  #assign ann@staff.example.com\r\n#urgency p2\r\n"), 2);
	T_EQ_STR(L.v[0].arg, "ann@staff.example.com");
	T_EQ_INT(L.v[1].urgency, 2);
	T_EQ_INT(L.only_commands, 1);

	parse("#resolve cause: relay host changed; lesson: warn customers before changing it\n");
	T_EQ_INT(L.v[0].kind, MAILCMD_RESOLVE);
	T_EQ_STR(L.v[0].text, "relay host changed");
	T_EQ_STR(L.v[0].lesson, "warn customers before changing it");
	T_EQ_INT(L.v[0].incident, 0);
	parse("#resolve incident lesson: monitor the queue; cause: disk full\n");
	T_EQ_INT(L.v[0].kind, MAILCMD_RESOLVE);
	T_EQ_INT(L.v[0].incident, 1);
	T_EQ_STR(L.v[0].text, "disk full");

	parse("#note called the client, they are testing\n#tier premium\n#reopen\n");
	T_EQ_INT((int)L.n, 3);
	T_EQ_STR(L.v[0].text, "called the client, they are testing");
	T_EQ_STR(L.v[1].arg, "premium");
	T_EQ_INT(L.v[2].kind, MAILCMD_REOPEN);
}

static void
test_errors(void)
{
	parse("#resolve\n");
	T_EQ_INT(L.v[0].kind, MAILCMD_BAD);
	T_CONTAINS(L.v[0].error, "resolve without a cause");
	parse("#resolve cause: x\n");
	T_CONTAINS(L.v[0].error, "resolve without a lesson");
	parse("#resolve because it works\n");
	T_CONTAINS(L.v[0].error, "cause: TEXT; lesson: TEXT");
	parse("#close\n");
	T_CONTAINS(L.v[0].error, "unknown command #close");
	T_EQ_STR(L.v[0].line, "#close");
	parse("#urgency P5\n");
	T_CONTAINS(L.v[0].error, "P1, P2, P3 or P4");
	parse("#assign bob\n");
	T_CONTAINS(L.v[0].error, "not a mail address");
	parse("#wait please\n");
	T_CONTAINS(L.v[0].error, "#wait takes nothing");
	parse("#tier gold plus\n");
	T_CONTAINS(L.v[0].error, "one word");
	parse("#note\n");
	T_CONTAINS(L.v[0].error, "#note wants");
}

static void
test_not_commands(void)
{
	/* the client's text: '#' further down, '#' and a digit, no block */
	T_EQ_INT((int)parse("Hello,\n#assign me\n"), 0);
	T_EQ_INT((int)parse("#12 is the ticket\n"), 0);
	T_EQ_INT((int)parse("# heading\n"), 0);
	T_EQ_INT((int)parse(""), 0);
	T_EQ_INT((int)parse("\n\n\n"), 0);
	/* the block ends at the first other line */
	T_EQ_INT((int)parse("#wait\nthanks\n#reopen\n"), 1);
	T_EQ_INT(L.only_commands, 0);
}

static void
test_only_commands(void)
{
	parse("#note internal\n\n-- \nAnn, support\n");
	T_EQ_INT(L.only_commands, 1);
	parse("#wait\n\nOn Mon, 7 Dec 2026, Bob wrote:\n> it is broken\n");
	T_EQ_INT(L.only_commands, 1);
	parse("#wait\n-----Original Message-----\nFrom: bob\n");
	T_EQ_INT(L.only_commands, 1);
	parse("#wait\nPlease note:\nthe fix is live\n");
	T_EQ_INT(L.only_commands, 0);
}

static void
test_limits(void)
{
	size_t n = 100000, i;
	char *big = malloc(n * 8 + 1), *p = big;

	for (i = 0; i < n; i++)
		p += sprintf(p, "#wait\n\n");
	T_EQ_INT((int)parse(big), MAILCMD_MAX);
	T_EQ_INT((int)L.dropped, (int)(n - MAILCMD_MAX));
	/* a line far longer than a command line: cut, not overrun */
	memset(big, 'x', n * 8);
	big[0] = '#';
	big[1] = 'n';
	big[2] = 'o';
	big[3] = 't';
	big[4] = 'e';
	big[5] = ' ';
	big[n * 8] = '\0';
	T_EQ_INT((int)parse(big), 1);
	T_EQ_INT((int)strlen(L.v[0].text), MAILCMD_TEXT_MAX - 1);
	/* no NUL at the end: the length is what counts */
	memcpy(big, "#wait", 5);
	T_EQ_INT((int)mailcmd_parse(big, 5, &L), 1);
	free(big);
}


/* Strips raw, then parses header + new body: the text the client reads. */
static char *
stripped_text(const char *raw, int *changed, char **body)
{
	const char *hend = strstr(raw, "\r\n\r\n");
	size_t off = hend ? (size_t)(hend - raw) + 4 : 0;
	struct buf b, whole;
	struct msg *m;
	char *text;

	buf_init(&b, 1 << 20);
	*changed = mailcmd_strip(raw, strlen(raw), off, &b);
	buf_init(&whole, 1 << 21);
	buf_append(&whole, raw, off);
	buf_append(&whole, buf_str(&b), b.len);
	m = msg_parse(buf_str(&whole), whole.len, 1 << 20);
	text = strdup(m->text);
	*body = buf_steal(&b);
	msg_free(m);
	buf_free(&whole);
	return text;
}

static void
test_strip(void)
{
	int changed;
	char *t, *body;

	/* plain, 8bit: the block and the blank line after it go */
	t = stripped_text("From: ann@staff.test\r\nSubject: Re: [HG-7] x\r\n\r\n"
	    "#assign me\r\n#note called them\r\n\r\nDear Bob,\r\nfixed.\r\n", &changed, &body);
	T_EQ_INT(changed, 1);
	T_EQ_STR(body, "Dear Bob,\r\nfixed.\r\n");
	free(t);
	free(body);

	/* nothing to take out: the body comes back byte for byte */
	t = stripped_text("Subject: x\r\n\r\nDear Bob,\r\n#1 is done\r\n", &changed, &body);
	T_EQ_INT(changed, 0);
	T_EQ_STR(body, "Dear Bob,\r\n#1 is done\r\n");
	free(t);
	free(body);

	/* multipart/alternative, quoted-printable text in latin-1 and base64
	 * HTML: both lose the block, the boundaries and the rest stay */
	t = stripped_text("Subject: x\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "#wait\r\nGr=FC=DFe, Herr M=FCller\r\n"
	    "--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    /* <html><body><p>#wait</p><p>Grüße</p></body></html> */
	    "PGh0bWw+PGJvZHk+PHA+I3dhaXQ8L3A+PHA+R3LDvMOfZTwvcD48L2JvZHk+PC9odG1sPg==\r\n"
	    "--b1--\r\n", &changed, &body);
	T_EQ_INT(changed, 1);
	T_CONTAINS(t, "Grüße, Herr Müller");
	T_CHECK(strstr(t, "#wait") == NULL);
	T_CONTAINS(body, "--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n");
	T_CONTAINS(body, "Gr=FC=DFe, Herr M=FCller");
	T_CONTAINS(body, "--b1--");
	{
		/* the HTML part, decoded again */
		const char *b64 = strstr(body, "base64\r\n\r\n");
		struct buf h;

		T_CHECK(b64 != NULL);
		if (b64 != NULL) {
			const char *e = strstr(b64, "--b1--");

			b64 += 10;
			buf_init(&h, 4096);
			msg_cte_decode(MSG_CTE_BASE64, b64, (size_t)(e - b64), &h);
			T_EQ_STR(buf_str(&h), "<html><body><p></p><p>Grüße</p></body></html>");
			buf_free(&h);
		}
	}
	free(t);
	free(body);

	/* HTML only, Outlook's spans inside the paragraph, a head with a
	 * style that has a '#' colour */
	t = stripped_text("Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	    "<html><head><style>p{color:#abc}</style></head><body>"
	    "<p class=MsoNormal><span style='x'>#assign <b>me</b></span></p>\r\n"
	    "<div>#note internal&nbsp;only</div><br>Hello Bob, #2 is fixed.</body></html>",
	    &changed, &body);
	T_EQ_INT(changed, 1);
	T_CONTAINS(body, "<style>p{color:#abc}</style>");
	T_CONTAINS(body, "<span style='x'><b></b></span></p>");
	T_CONTAINS(body, "<div></div><br>Hello Bob, #2 is fixed.");
	T_CHECK(strstr(body, "internal") == NULL);
	T_CHECK(strstr(t, "assign") == NULL);
	free(t);
	free(body);

	/* a command in the client's words further down is theirs */
	t = stripped_text("Subject: x\r\nContent-Type: text/html\r\n\r\n"
	    "<p>Hello</p><p>#wait</p>", &changed, &body);
	T_EQ_INT(changed, 0);
	free(t);
	free(body);
}

int
main(void)
{
	test_commands();
	test_errors();
	test_not_commands();
	test_only_commands();
	test_limits();
	test_strip();
	return t_done();
}
