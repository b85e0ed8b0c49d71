/*
 * mailhints - the client's mail settings, as far as their own words give
 * them (issue 5: a client with no stored settings writes "my outgoing mail
 * is not being sent"; the diagnosis starts from what they wrote).
 *
 * Input: the decoded UTF-8 body text (msg.h's text), untrusted.  Only the
 * first MAILHINTS_INPUT_MAX bytes are read; work is linear in that.
 *
 * What is recognised, in EN RU UK DE FR ES PL IT PT:
 *  - host names near "SMTP"/"outgoing"/"исходящ"/"Postausgang"/... (SMTP)
 *    or "IMAP"/"incoming"/"входящ"/"Posteingang"/... (IMAP), and names
 *    starting with smtp./submission./mail. (SMTP) or imap. (IMAP); pasted
 *    settings (Outlook, Thunderbird, Apple Mail) give the context through
 *    their headings ("Outgoing Server (SMTP)") and labels ("Server:");
 *  - ports: "host:587", "port 465", "порт 25", "Port: 2525", Outlook's
 *    "Outgoing server (SMTP): 587", a mail port right after a host name;
 *  - security: SSL, SSL/TLS, SMTPS, implicit TLS -> DIAG_SEC_TLS; STARTTLS
 *    and a bare "TLS" (what old clients called STARTTLS; implicit on 465)
 *    -> DIAG_SEC_STARTTLS; "None"/"keine"/"без шифрования" after a security
 *    label -> DIAG_SEC_NONE;
 *  - the user name after a label ("User Name:", "Логин:", "Benutzername:");
 *    nothing is ever taken from a password line;
 *  - a pasted server reply ("535 5.7.8 Error: authentication failed") and
 *    the client program's error ("Connection refused", 0x800CCC0E), as a
 *    short hint.
 * Never a host from an e-mail address's domain (the caller falls back to
 * the sender's domain), from a URL (unless labelled as the mail server) or
 * from a token that cannot be one (report.pdf, 1.2.3, _x.y).
 *
 * Quoted text ('>' lines, and everything after "On ... wrote:", "-----
 * Original Message-----", an Outlook From:/Sent: block or the signature)
 * counts less: a field is taken from it only when the client's own text
 * gives none.
 */
#ifndef HG_MAILHINTS_H
#define HG_MAILHINTS_H

#include <stddef.h>

#define MAILHINTS_INPUT_MAX	(64 * 1024)
#define MAILHINTS_REPLY_MAX	200	/* bytes of reply_text */
#define MAILHINTS_USER_MAX	128

/*
 * Every string is owned by the struct (free with mail_hints_free) except
 * error_hint, which is static.  Hosts are lower-case.  Ports 0 and
 * security -1 mean "not said"; security is otherwise an enum diag_security.
 */
struct mail_hints {
	char		*smtp_host;
	int		 smtp_port;
	int		 smtp_security;
	char		*imap_host;
	int		 imap_port;
	int		 imap_security;
	char		*user;		/* printable ASCII, <= MAILHINTS_USER_MAX */
	char		*reply_code;	/* "535 5.7.8", or "554" without an enhanced code */
	char		*reply_text;	/* that reply line from its code on: printable
					 * ASCII (others '?'), <= MAILHINTS_REPLY_MAX */
	const char	*error_hint;	/* "authentication failed", "relay denied",
					 * "connection refused", "timed out", ... */
};

/*
 * Fills *out (any previous content is not freed).  sender_domain (may be
 * NULL) breaks ties in favour of the client's own domain.  Returns the
 * number of fields found, 0 when the text names none.
 */
int	mail_hints_parse(const char *text, size_t len, const char *sender_domain,
	    struct mail_hints *out);
/* Frees the strings and resets *h to "nothing found"; NULL is fine. */
void	mail_hints_free(struct mail_hints *h);

#endif
