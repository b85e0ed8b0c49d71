/*
 * test_mailcmd - staff commands at the top of a mail (shared/mailcmd.c):
 * what is a command, what is the client's text, exact errors, and that
 * nothing reads past the end or costs more than linear time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailcmd.h"
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

int
main(void)
{
	test_commands();
	test_errors();
	test_not_commands();
	test_only_commands();
	test_limits();
	return t_done();
}
