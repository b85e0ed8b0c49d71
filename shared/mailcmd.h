/*
 * mailcmd - the commands staff write at the top of a mail to a client or
 * to the support address (Zendesk's "#status solved", RT's CommandByMail):
 *
 *     #assign ADDR | me
 *     #wait
 *     #resolve [incident] cause: TEXT; lesson: TEXT
 *     #reopen
 *     #urgency P1..P4
 *     #note TEXT            (internal: never sent to the client)
 *     #tier TIER
 *
 * The block is the first lines of the text that start with '#' and a
 * letter, blank lines between them allowed; the first other line ends it,
 * so a '#' further down ("see ticket #12") is the client's text.  Only
 * staff the MTA authenticated may command (the milter decides; this module
 * only reads text).  The cost is linear in the text, and at most
 * MAILCMD_MAX commands of MAILCMD_LINE_MAX bytes are read.
 */
#ifndef HG_MAILCMD_H
#define HG_MAILCMD_H

#include <stddef.h>

#define MAILCMD_MAX		16
#define MAILCMD_LINE_MAX	1000
#define MAILCMD_TEXT_MAX	512	/* a note, a cause, a lesson */

enum mailcmd_kind {
	MAILCMD_ASSIGN, MAILCMD_WAIT, MAILCMD_RESOLVE, MAILCMD_REOPEN, MAILCMD_URGENCY,
	MAILCMD_NOTE, MAILCMD_TIER, MAILCMD_BAD,
};

struct mailcmd {
	enum mailcmd_kind kind;
	char	line[MAILCMD_LINE_MAX];		/* as written, for the answer */
	char	arg[320];			/* assign: address or "me"; tier */
	int	urgency;			/* 1..4 */
	int	incident;
	char	text[MAILCMD_TEXT_MAX];		/* note; resolve: cause */
	char	lesson[MAILCMD_TEXT_MAX];
	char	error[160];			/* MAILCMD_BAD: what is wrong */
};

struct mailcmd_list {
	struct mailcmd	v[MAILCMD_MAX];
	size_t		n;
	size_t		dropped;		/* commands past MAILCMD_MAX */
	size_t		block_end;		/* offset of the first byte after the block */
	int		only_commands;		/* nothing but the block (and blanks, a
						 * signature) follows: nothing for a client */
};

/* Reads the command block at the top of text[0..len) ("\n" or "\r\n"
 * line ends).  Returns the number of commands (0: none; out->n). */
size_t	mailcmd_parse(const char *text, size_t len, struct mailcmd_list *out);

struct buf;
/* The body of raw (a whole message; its body starts at body_offset) with
 * the command block taken out of the text/plain and text/html parts the
 * client reads, their transfer encoding, charset and the MIME structure
 * kept, appended to body_out.  Returns 1 when something was taken out.
 * The block is found in the decoded bytes, so any charset that writes
 * ASCII as ASCII (UTF-8, the ISO-8859 and Windows code pages, KOI8) works. */
int	mailcmd_strip(const char *raw, size_t len, size_t body_offset, struct buf *body_out);

/* "assign", "wait", ... */
const char *mailcmd_name(enum mailcmd_kind kind);

#endif
