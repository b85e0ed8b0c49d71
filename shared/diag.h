/*
 * diag - diagnose a client's mail settings by probing the server (issue 5).
 *
 * diag_smtp() walks one SMTP session step by step, the way a mail client
 * would: resolve (every A/AAAA address tried in turn), TCP connect, greeting,
 * EHLO, STARTTLS, TLS handshake and certificate, EHLO again, AUTH, MAIL FROM,
 * RCPT TO (never DATA), QUIT.  Each step is recorded with its duration and
 * the server's own words (sanitised: control and non-ASCII bytes replaced,
 * capped at DIAG_DETAIL_MAX bytes, any echo of the credentials redacted).
 * The result is one verdict from the fixed list below, plus advice.
 *
 * Safety:
 *  - every resolved address is checked against the allow list AFTER
 *    resolution (no DNS rebinding): loopback, private, link-local, CGNAT,
 *    multicast and reserved addresses are refused unless inside one of
 *    target->allow (CIDR strings, IPv4 or IPv6, e.g. "127.0.0.0/8");
 *  - the password is never written to logs, the report, or any output; it
 *    is owned by the target and wiped by diag_target_free();
 *  - every step is bounded by step_timeout_ms and the whole call by
 *    timeout_ms (DiagnoseTimeout, default 20 s).
 *
 * Security modes: "tls" runs the handshake right after connect (a plain
 * server's "220 " arriving instead gives tls_mode_mismatch); "starttls"
 * requires STARTTLS in EHLO, upgrades and says EHLO again; "none" stays in
 * clear text and only notes a STARTTLS offer in a step (a client set to
 * "none" would not use it either).  A greeting timeout without TLS is
 * followed by a short TLS ClientHello on the same connection: an answer
 * means the port speaks implicit TLS (tls_mode_mismatch); for that a
 * quarter of the budget (at most 2 s) is kept back from the greeting wait.
 *
 * Trust: the system CA store (loaded once per process, on the first TLS
 * diagnosis, before its clock starts) plus ca_file (DiagnoseCAFile, read
 * per call; a file that cannot be read is reported as a step "CA file").
 * The chain is verified after the handshake; the host name separately, so
 * that cert_untrusted, cert_expired and cert_hostname_mismatch stay apart
 * (expired wins when several apply, then untrusted, then the name).
 *
 * DNS: c-ares (diag_dns.h), bounded by the step like every other wait;
 * resolver is DiagnoseResolver "ADDRESS[:PORT]" or NULL for resolv.conf.
 *
 * An address refused by the allow list gives DIAG_PROTOCOL_ERROR with a
 * step "address not allowed" and report->not_allowed set: the issue's
 * verdict list is fixed, so no verdict was added for it.  So does a port
 * outside mail_ports[] of an untrusted target (step "port not allowed").
 */
#ifndef HG_DIAG_H
#define HG_DIAG_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

#define DIAG_TIMEOUT_DEFAULT_MS		20000
#define DIAG_STEP_TIMEOUT_DEFAULT_MS	10000
#define DIAG_DETAIL_MAX			512

enum diag_security { DIAG_SEC_TLS, DIAG_SEC_STARTTLS, DIAG_SEC_NONE };

enum diag_verdict {
	DIAG_OK,
	DIAG_DNS_NOT_FOUND,
	DIAG_CONNECT_REFUSED,
	DIAG_CONNECT_TIMEOUT,
	DIAG_GREETING_TIMEOUT,
	DIAG_TLS_MODE_MISMATCH,
	DIAG_STARTTLS_UNAVAILABLE,
	DIAG_TLS_HANDSHAKE_FAILED,
	DIAG_CERT_UNTRUSTED,
	DIAG_CERT_EXPIRED,
	DIAG_CERT_HOSTNAME_MISMATCH,
	DIAG_AUTH_UNAVAILABLE,
	DIAG_AUTH_FAILED,
	DIAG_SENDER_REJECTED,
	DIAG_RELAY_DENIED,
	DIAG_PROTOCOL_ERROR,
	DIAG_VERDICT_COUNT
};

/*
 * What to probe.  Every string is owned by the target (xstrdup'd by the
 * caller or by diag_target_password_file) and freed by diag_target_free(),
 * which wipes the password first.  NULL user: no authentication.  NULL
 * mail_from: no MAIL FROM / RCPT TO.  NULL rcpt: MAIL FROM only.
 */
struct diag_target {
	char			*host;
	int			 port;
	enum diag_security	 security;
	char			*user;
	char			*password;
	char			*mail_from;
	char			*rcpt;
	char			*helo;		/* EHLO name; NULL: "helpgate.invalid" */
	long			 timeout_ms;	/* whole diagnosis; 0: 20 s */
	long			 step_timeout_ms; /* each step; 0: 10 s */
	char			*ca_file;	/* PEM, added to the system store; may be NULL */
	char		       **allow;		/* CIDR strings (ProbeAllow) */
	size_t			 allow_count;
	char			*resolver;	/* DiagnoseResolver "ADDRESS[:PORT]"; NULL: system */
	/*
	 * A target a sender chose (named in their message, or their domain),
	 * which anyone can do under anyone's From: allow[] does not apply
	 * (only public unicast addresses are probed), and only the ports in
	 * mail_ports[] are connected to, by this target and by every
	 * alternative (an SRV answer may name any port).  A port outside them
	 * is refused before any lookup: protocol_error, not_allowed, a step
	 * "port not allowed".  0 for staff's own targets (customer record,
	 * helpgatectl diagnose).  mail_ports is owned like the strings.
	 */
	int			 untrusted;
	int			*mail_ports;
	size_t			 mail_port_count;
};

struct diag_step {
	char	*name;		/* "connect 127.0.0.1:587", "AUTH PLAIN", ... */
	int	 ok;
	long	 duration_ms;
	char	*detail;	/* server's words or our finding; may be NULL */
};

struct diag_tls {
	int	 used;		/* a handshake completed */
	char	*version;	/* "TLS1.3" */
	char	*subject;	/* leaf certificate DN */
	char	*issuer;
	long	 days_to_expiry;	/* negative when expired */
	int	 hostname_ok;
	int	 trusted;
};

/* Everything in a report is owned by it; free with diag_report_free(). */
struct diag_report {
	const char		*protocol;	/* "smtp" or "imap" (static) */
	enum diag_verdict	 verdict;
	char			*advice;	/* one sentence for the client; may be NULL */
	char			*hint;		/* provider case for auth_failed, e.g.
						 * "application password required"; may be NULL */
	int			 not_allowed;	/* the allow list refused every address */
	long			 duration_ms;
	struct diag_step	*steps;
	size_t			 step_count;
	struct diag_tls		 tls;
	/* imap: 1 a Sent folder exists (\Sent or a known name), 0 none (a
	 * finding, not a verdict), -1 not checked (no login) */
	int			 sent_folder_found;
	char			*sent_folder;	/* its name, UTF-8; may be NULL */
};

const char *diag_verdict_name(enum diag_verdict v);
const char *diag_security_name(enum diag_security s);
/* "tls", "ssl", "implicit" / "starttls" / "none", "plain"; -1 if unknown. */
int	diag_security_parse(const char *s, enum diag_security *out);

/*
 * Reads the password (first line, without the newline) from path into
 * t->password.  Refuses (returns -1, reason in err) a file that is not a
 * regular file, is a symlink, or is readable or writable by group/others
 * (mode must be 0600 or stricter).  The read buffer is wiped.
 */
int	diag_target_password_file(struct diag_target *t, const char *path, struct buf *err);
/* Frees every string of t (wiping the password) and zeroes it; NULL is fine. */
void	diag_target_free(struct diag_target *t);

/*
 * Runs the SMTP diagnosis.  r is initialised here (any previous content is
 * not freed).  Returns r->verdict.  Never writes the password anywhere.
 */
enum diag_verdict diag_smtp(const struct diag_target *t, struct diag_report *r);

/*
 * What a refusal of MAIL FROM or RCPT TO refuses, read the way a postmaster
 * reads it (diag_smtp.c).  The server's words first: the first of sender,
 * relay or recipient that they name wins ("<a@b>: Sender address rejected:
 * User unknown in local recipient table" refuses the sender; "Unable to
 * relay recipient" is relaying).  Addresses, host names and URLs (<...>,
 * tokens with '@', '/' or a dot before a letter) are not words.  Sender:
 * sender, send as, on behalf, not authorized to send, sending from, from
 * address, owned, not logged in; relay: relay..., rcpthosts; recipient:
 * recipient, user unknown, no such user, mailbox unavailable, ...  A sender
 * refusal is for the login (SENDER_LOGIN) when the words say so: send as,
 * on behalf, not authorized to send, owned, not logged in, does not match,
 * mismatch, permission.  When the words name nothing, the RFC 3463 enhanced
 * code at the start: X.1.7, X.1.8, X.7.27 sender; X.7.60 (Exchange: no
 * permission to send as) sender for the login; X.1.1, X.1.2, X.1.3, X.1.6,
 * X.1.10 recipient; X.7.54 (Exchange: unable to relay) relay; X.7.1
 * ("delivery not authorized") alone is relaying at RCPT TO and the sender
 * at MAIL FROM.  A recipient refused with one of these X.7 codes is refused
 * for security, not for its address: "554 5.7.1 <x>: Recipient address
 * rejected: Access denied" (a Postfix submission service to a client that
 * did not log in) is relaying.  At MAIL FROM a recipient is the sender (the
 * only mailbox named there).  Case-insensitive; linear in the reply's
 * length.
 */
enum diag_refusal {
	DIAG_REFUSED_OTHER,
	DIAG_REFUSED_SENDER,		/* the sender address itself */
	DIAG_REFUSED_SENDER_LOGIN,	/* the sender address, for this login */
	DIAG_REFUSED_RELAY,
	DIAG_REFUSED_RECIPIENT,
};
/* reply: the whole reply, lines joined with '\n' ("553 5.7.1 <a@b>: ...");
 * at_rcpt: it answered RCPT TO (else MAIL FROM). */
enum diag_refusal diag_smtp_refusal(const char *reply, int at_rcpt);
const char *diag_refusal_name(enum diag_refusal k);	/* "sender", ... */

/*
 * IMAP: connect or TLS, greeting, CAPABILITY, STARTTLS, LOGINDISABLED,
 * LOGIN or AUTHENTICATE, and that a Sent folder exists.  Same target and
 * verdict list as SMTP (mail_from and rcpt are ignored); r->protocol is
 * "imap".  Implemented in diag_imap.c.
 */
enum diag_verdict diag_imap(const struct diag_target *t, struct diag_report *r);

/*
 * A working combination other than the one the client gave.  source says
 * where it came from: "port list" (DiagnosePorts), "host name" (smtp.DOMAIN,
 * mail.DOMAIN), "SRV" (_submission._tcp.DOMAIN, RFC 6186).
 */
struct diag_alternative {
	int			 found;
	char			*host;
	int			 port;
	enum diag_security	 security;
	int			 verified;	/* logged in with the same credentials
						 * (and passed MAIL/RCPT if asked) */
	const char		*source;	/* static */
	size_t			 tried;		/* combinations probed */
	struct diag_report	 report;	/* the probe that worked */
};

/*
 * The whole SMTP diagnosis: t itself and, in parallel, the combinations a
 * mail client would guess (ports: the DiagnosePorts list, e.g. "587/starttls
 * 465/tls 25/starttls 2525/starttls"; domain: for smtp./mail. names and the
 * SRV record, NULL to derive it from t->host).  Everything ends within
 * t->timeout_ms.  r gets t's own report; alt is filled (found = 1) only when
 * r's verdict is not ok and another combination works, preferring one that
 * authenticated with the same credentials.  Returns r->verdict.
 * Logins: only t itself logs in while the candidates run; with credentials
 * a candidate stops at the AUTH mechanisms (it works when it offers PLAIN
 * or LOGIN over TLS), and only when r failed before its login are at most
 * two of them then verified with the credentials, one after another: at
 * most three logins per call.  After auth_failed (r's or a verification's)
 * alt stays empty: the password, not the port, is wrong.
 * Implemented in diag_alt.c.
 */
enum diag_verdict diag_smtp_with_alternatives(const struct diag_target *t, const char *ports,
	    const char *domain, struct diag_report *r, struct diag_alternative *alt);
/* {"host":..,"port":..,"security":..,"verified":..,"source":..} or null. */
void	diag_alternative_json(const struct diag_alternative *alt, struct buf *out);
void	diag_alternative_free(struct diag_alternative *alt);

/* {"protocol":..,"verdict":..,"advice":..,"hint":..,"duration_ms":..,
 *  "tls":{..}|null,"steps":[{"name","ok","duration_ms","detail"}]}; an
 *  imap report also has "sent_folder_found" (true/false/null) and
 *  "sent_folder" (name or null) before "steps". */
void	diag_report_json(const struct diag_report *r, struct buf *out);
/* A terminal check list: "✓ connect 127.0.0.1:587 (3 ms)", "✗ AUTH PLAIN:
 * 535 5.7.8 ... (12 ms)", then the verdict and the advice. */
void	diag_report_text(const struct diag_report *r, struct buf *out);
void	diag_report_free(struct diag_report *r);

/*
 * The address policy, exposed for tests: 1 if sa may be probed, i.e. it is
 * inside one of allow[] or is a public unicast address.  An IPv6 address
 * that stands for an IPv4 host is judged as that host: IPv4-mapped
 * ::ffff:0:0/96, IPv4-compatible ::/96, SIIT's ::ffff:0:0:0/96 and the
 * NAT64 well-known prefix 64:ff9b::/96 (an allow entry may name either
 * form).  Other IPv6 must be global unicast (2000::/3) and outside
 * 2001::/23 (Teredo, ...), 2001:db8::/32, 2002::/16 (6to4) and 3fff::/20;
 * the local-use NAT64 prefix 64:ff9b:1::/48 is refused (where its IPv4
 * address sits is the operator's choice) unless allow[] names it.  An
 * unparsable CIDR in allow[] is ignored.
 */
int	diag_addr_allowed(const struct sockaddr *sa, char *const *allow, size_t allow_count);
/* 1 if the textual address addr is inside cidr ("10.0.0.0/8", "::1/128",
 * a bare address means /32 or /128); 0 if not; -1 if either is unparsable.
 * An IPv4-mapped address or CIDR (::ffff:10.0.0.1, ::ffff:10.0.0.0/104) is
 * the IPv4 one it maps. */
int	diag_cidr_match(const char *cidr, const char *addr);

#endif
