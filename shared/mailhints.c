/*
 * mailhints - mail settings from the client's own words (mailhints.h).
 *
 * How the text is read:
 *  1. A copy is case-folded without changing any byte length (ASCII,
 *     Latin-1, Latin Extended-A, Cyrillic), so a position in the folded
 *     copy is the same position in the original: matching happens in the
 *     fold, values are copied from the original.
 *  2. Line by line, each line is marked own or quoted (mailhints.h), and
 *     scanned once for host-like tokens and once, at word starts, for the
 *     words of the table below (context SMTP/IMAP/POP, "server", "port",
 *     security words and labels, user labels).  A keyword inside a host
 *     token ("smtp" in smtp.example.com) is not a keyword: the name's own
 *     prefix already says so.
 *  3. Context: the keyword nearest on the same line, else a recent heading
 *     line ("Outgoing Server (SMTP)", "Server Settings:") of at most 12
 *     lines before, else the kind of host on the line, else the port number
 *     itself (143/993 IMAP, otherwise SMTP: the issue is outgoing mail).
 *  4. Hosts are scored per protocol (name prefix, context, label, nearness,
 *     the sender's domain); a host with no telling prefix needs a label or
 *     a context keyword close by, so prose like "our site example.com" is
 *     not taken.  Own text first; quoted text only when own text has none.
 * Everything is bounded by fixed tables (MAX_* below) and the input cap;
 * each line is scanned a fixed number of times, so the work is linear.
 */
#include "mailhints.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diag.h"
#include "xalloc.h"

#define MAX_CANDS	32	/* distinct host names kept */
#define MAX_HITS	64	/* port / security hits kept (first ones) */
#define MAX_LINE_KW	48	/* keyword hits per line */
#define MAX_LINE_HOSTS	16	/* host tokens per line */
#define MAX_SENTENCES	256	/* sentence ends per line told apart */
#define HOST_MAX	253
#define INHERIT_LINES	12	/* a heading's context reaches this far */
#define HEADING_MAX	100	/* longer lines are prose, not headings */
#define NEAR		24	/* bytes between a context word and its value */
#define HOST_THRESHOLD	3

enum proto { P_NONE, P_SMTP, P_IMAP, P_POP };
enum hclass { H_NONE, H_SMTP, H_IMAP, H_MAIL, H_POP, H_MX, H_WEB, H_IP };
enum kkind { K_CTX, K_LABEL, K_PORT, K_SEC, K_SECLABEL, K_SETTINGS, K_USER, K_PW };
enum { S_TLS, S_STARTTLS, S_WEAK_TLS, S_SMTPS, S_IMAPS, S_NONE };

struct kw {
	const char	*pat;	/* folded; ' ' matches blanks, '\'' any apostrophe */
	unsigned char	 kind;
	signed char	 val;
	unsigned char	 end;	/* must end at a word end */
};

/* The vocabulary; folded (lower-case) forms, stems unless end = 1. */
static const struct kw kws[] = {
	/* context: outgoing (SMTP) */
	{ "smtp", K_CTX, P_SMTP, 0 }, { "outgoing", K_CTX, P_SMTP, 0 },
	{ "outbound", K_CTX, P_SMTP, 0 }, { "submission", K_CTX, P_SMTP, 0 },
	{ "исходящ", K_CTX, P_SMTP, 0 }, { "отправк", K_CTX, P_SMTP, 0 },
	{ "вихідн", K_CTX, P_SMTP, 0 }, { "відправк", K_CTX, P_SMTP, 0 },
	{ "postausgang", K_CTX, P_SMTP, 0 }, { "ausgangsserver", K_CTX, P_SMTP, 0 },
	{ "ausgehend", K_CTX, P_SMTP, 0 }, { "sortant", K_CTX, P_SMTP, 0 },
	{ "d'envoi", K_CTX, P_SMTP, 0 }, { "saliente", K_CTX, P_SMTP, 0 },
	{ "de salida", K_CTX, P_SMTP, 0 }, { "wychodząc", K_CTX, P_SMTP, 0 },
	{ "in uscita", K_CTX, P_SMTP, 0 }, { "saída", K_CTX, P_SMTP, 0 },
	{ "saida", K_CTX, P_SMTP, 0 }, { "de envio", K_CTX, P_SMTP, 0 },
	/* context: incoming (IMAP; POP is incoming too, but not IMAP) */
	{ "imap", K_CTX, P_IMAP, 0 }, { "incoming", K_CTX, P_IMAP, 0 },
	{ "inbound", K_CTX, P_IMAP, 0 }, { "входящ", K_CTX, P_IMAP, 0 },
	{ "вхідн", K_CTX, P_IMAP, 0 }, { "posteingang", K_CTX, P_IMAP, 0 },
	{ "eingangsserver", K_CTX, P_IMAP, 0 }, { "eingehend", K_CTX, P_IMAP, 0 },
	{ "entrant", K_CTX, P_IMAP, 0 }, { "de réception", K_CTX, P_IMAP, 0 },
	{ "de reception", K_CTX, P_IMAP, 0 }, { "entrada", K_CTX, P_IMAP, 0 },
	{ "przychodząc", K_CTX, P_IMAP, 0 }, { "in arrivo", K_CTX, P_IMAP, 0 },
	{ "pop3", K_CTX, P_POP, 1 }, { "pop", K_CTX, P_POP, 1 },
	/* "server", "host name" */
	{ "server", K_LABEL, 0, 0 }, { "serveur", K_LABEL, 0, 0 },
	{ "servidor", K_LABEL, 0, 0 }, { "serwer", K_LABEL, 0, 0 },
	{ "сервер", K_LABEL, 0, 0 }, { "host", K_LABEL, 0, 1 },
	{ "hostname", K_LABEL, 0, 0 }, { "hôte", K_LABEL, 0, 0 },
	/* port labels */
	{ "port", K_PORT, 0, 1 }, { "ports", K_PORT, 0, 1 },
	{ "portnummer", K_PORT, 0, 1 }, { "porta", K_PORT, 0, 1 },
	{ "porte", K_PORT, 0, 1 }, { "puerto", K_PORT, 0, 1 },
	{ "порт", K_PORT, 0, 1 }, { "порта", K_PORT, 0, 1 },
	{ "порту", K_PORT, 0, 1 },
	/* security words */
	{ "starttls", K_SEC, S_STARTTLS, 1 },
	{ "ssl/tls", K_SEC, S_TLS, 1 }, { "tls/ssl", K_SEC, S_TLS, 1 },
	{ "ssl / tls", K_SEC, S_TLS, 1 }, { "tls / ssl", K_SEC, S_TLS, 1 },
	{ "implicit tls", K_SEC, S_TLS, 1 }, { "implicit ssl", K_SEC, S_TLS, 1 },
	{ "smtps", K_SEC, S_SMTPS, 1 }, { "imaps", K_SEC, S_IMAPS, 1 },
	{ "ssl", K_SEC, S_TLS, 1 }, { "tls", K_SEC, S_WEAK_TLS, 1 },
	{ "без шифрования", K_SEC, S_NONE, 0 }, { "без шифрування", K_SEC, S_NONE, 0 },
	{ "unencrypted", K_SEC, S_NONE, 1 }, { "no encryption", K_SEC, S_NONE, 1 },
	{ "without encryption", K_SEC, S_NONE, 1 },
	{ "ohne verschlüsselung", K_SEC, S_NONE, 1 },
	{ "keine verschlüsselung", K_SEC, S_NONE, 1 },
	{ "unverschlüsselt", K_SEC, S_NONE, 1 }, { "sans chiffrement", K_SEC, S_NONE, 1 },
	{ "aucun chiffrement", K_SEC, S_NONE, 1 }, { "non chiffré", K_SEC, S_NONE, 0 },
	{ "sin cifrado", K_SEC, S_NONE, 1 }, { "sin cifrar", K_SEC, S_NONE, 1 },
	{ "bez szyfrowania", K_SEC, S_NONE, 1 }, { "senza crittografia", K_SEC, S_NONE, 1 },
	{ "nessuna crittografia", K_SEC, S_NONE, 1 }, { "sem criptografia", K_SEC, S_NONE, 1 },
	{ "nenhuma criptografia", K_SEC, S_NONE, 1 },
	/* security labels: a "none" word after one means no encryption */
	{ "security", K_SECLABEL, 0, 0 }, { "secure", K_SECLABEL, 0, 0 },
	{ "encrypt", K_SECLABEL, 0, 0 }, { "шифр", K_SECLABEL, 0, 0 },
	{ "безопасн", K_SECLABEL, 0, 0 }, { "захист", K_SECLABEL, 0, 0 },
	{ "verschlüssel", K_SECLABEL, 0, 0 }, { "sicherheit", K_SECLABEL, 0, 0 },
	{ "verbindungssicherheit", K_SECLABEL, 0, 0 },
	{ "chiffr", K_SECLABEL, 0, 0 }, { "sécurité", K_SECLABEL, 0, 0 },
	{ "securite", K_SECLABEL, 0, 0 }, { "cifrad", K_SECLABEL, 0, 0 },
	{ "seguridad", K_SECLABEL, 0, 0 }, { "szyfrow", K_SECLABEL, 0, 0 },
	{ "zabezpiecz", K_SECLABEL, 0, 0 }, { "crittograf", K_SECLABEL, 0, 0 },
	{ "sicurezza", K_SECLABEL, 0, 0 }, { "criptograf", K_SECLABEL, 0, 0 },
	{ "segurança", K_SECLABEL, 0, 0 }, { "seguranca", K_SECLABEL, 0, 0 },
	/* "... settings" headings */
	{ "settings", K_SETTINGS, 0, 0 }, { "setting", K_SETTINGS, 0, 0 },
	{ "einstellung", K_SETTINGS, 0, 0 }, { "настройк", K_SETTINGS, 0, 0 },
	{ "налаштуван", K_SETTINGS, 0, 0 }, { "paramètres", K_SETTINGS, 0, 0 },
	{ "parametres", K_SETTINGS, 0, 0 }, { "configura", K_SETTINGS, 0, 0 },
	{ "ustawieni", K_SETTINGS, 0, 0 }, { "impostazion", K_SETTINGS, 0, 0 },
	/* user labels (followed by ':' or '=') */
	{ "user name", K_USER, 0, 0 }, { "username", K_USER, 0, 0 },
	{ "user id", K_USER, 0, 0 }, { "user", K_USER, 0, 0 },
	{ "login name", K_USER, 0, 0 }, { "login", K_USER, 0, 0 },
	{ "account name", K_USER, 0, 0 }, { "benutzername", K_USER, 0, 0 },
	{ "benutzer", K_USER, 0, 0 }, { "nom d'utilisateur", K_USER, 0, 0 },
	{ "identifiant", K_USER, 0, 0 }, { "utilisateur", K_USER, 0, 0 },
	{ "nombre de usuario", K_USER, 0, 0 }, { "usuario", K_USER, 0, 0 },
	{ "nazwa użytkownika", K_USER, 0, 0 }, { "użytkownik", K_USER, 0, 0 },
	{ "nome utente", K_USER, 0, 0 }, { "utente", K_USER, 0, 0 },
	{ "nome de usuário", K_USER, 0, 0 }, { "nome do usuário", K_USER, 0, 0 },
	{ "nome de utilizador", K_USER, 0, 0 }, { "usuário", K_USER, 0, 0 },
	{ "utilizador", K_USER, 0, 0 }, { "имя пользователя", K_USER, 0, 0 },
	{ "пользователь", K_USER, 0, 0 }, { "логин", K_USER, 0, 0 },
	{ "ім'я користувача", K_USER, 0, 0 }, { "користувач", K_USER, 0, 0 },
	{ "логін", K_USER, 0, 0 },
	/* a line about a password: no value is taken from it */
	{ "passw", K_PW, 0, 0 }, { "парол", K_PW, 0, 0 },
	{ "mot de passe", K_PW, 0, 0 }, { "contraseñ", K_PW, 0, 0 },
	{ "hasł", K_PW, 0, 0 }, { "senha", K_PW, 0, 0 },
};

/* After a security label: the value says "no encryption". */
static const char *const none_words[] = {
	"none", "no", "off", "keine", "kein", "nein", "aucun", "aucune", "non",
	"ninguno", "ninguna", "ningún", "brak", "nie", "nessuna", "nessuno",
	"nenhuma", "nenhum", "нет", "немає", "ні", "отсутствует", NULL
};
/* "SSL: yes" */
static const char *const yes_words[] = {
	"yes", "on", "ja", "oui", "sí", "si", "tak", "sim", "да", "так", "true", NULL
};
/* "without SSL", "SSL off" */
static const char *const neg_before[] = {
	"without", "no", "not", "non", "без", "ohne", "sans", "sin", "bez", "senza",
	"sem", "kein", "keine", NULL
};
static const char *const neg_after[] = {
	"off", "disabled", "выключен", "отключен", "вимкнен", "deaktiviert",
	"désactivé", "desactivado", "wyłączon", "disattivat", "desativad", NULL
};
/* "SSL handshake failed", "TLS 1.2", "STARTTLS command": not a setting. */
static const char *const sec_not_setting[] = {
	"handshake", "error", "certificat", "cert", "negotiat", "alert", "routine",
	"librar", "fail", "version", "command", "ошибк", "помилк", "сертифик",
	"сертифік", "zertifikat", "fehler", "erreur", "certyfikat", "v1", "v2",
	"1.", "2.", "3.", NULL
};

/* Mail ports that may follow a host name without a "port" word. */
static int
known_port(int p)
{
	return p == 25 || p == 26 || p == 465 || p == 587 || p == 2525 ||
	    p == 143 || p == 993 || p == 110 || p == 995;
}

/* File name endings that are also valid-looking last labels. */
static const char *const file_ext[] = {
	"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "rtf",
	"txt", "csv", "log", "eml", "msg", "png", "jpg", "jpeg", "gif", "bmp",
	"tif", "tiff", "heic", "webp", "zip", "rar", "gz", "tgz", "exe", "msi",
	"dll", "htm", "html", "xml", "json", "ini", "conf", "cfg", "pst", "ost",
	"mp3", "mp4", "mov", "avi", "wav", "dmg", "apk", "bak", "tmp", "sh",
	"bat", "js", "css", "php", "py", "md", "yaml", "yml", "vcf", "ics", NULL
};

/*
 * Client program errors, as pasted: the first of these in the text names
 * error_hint.  Outlook's codes are from Microsoft's "Outlook and Outlook
 * Express error codes" article; Windows socket errors 10060/10061 are
 * WSAETIMEDOUT/WSAECONNREFUSED.  Folded (lower-case) substrings.
 */
static const struct { const char *pat; const char *hint; } hints[] = {
	{ "0x800ccc0e", "connection refused" },		/* cannot connect to server */
	{ "0x80042109", "connection refused" },		/* cannot connect to SMTP */
	{ "0x800ccc0d", "host not found" },		/* cannot locate server */
	{ "0x800ccc0f", "connection interrupted" },
	{ "0x800ccc13", "network unavailable" },
	{ "0x800ccc19", "timed out" },
	{ "0x8004210a", "timed out" },
	{ "0x8004210b", "timed out" },
	{ "0x800ccc18", "authentication failed" },	/* SPA failed */
	{ "0x800ccc92", "authentication failed" },
	{ "0x800ccc1a", "tls handshake failed" },	/* secure connection failed */
	{ "0x800ccc79", "relay denied" },
	{ "0x800ccc78", "sender rejected" },
	{ "socket error: 10061", "connection refused" },
	{ "socket error: 10060", "timed out" },
	{ "must issue a starttls", "starttls required" },
	{ "relay access denied", "relay denied" },
	{ "relaying denied", "relay denied" },
	{ "relay denied", "relay denied" },
	{ "relay not permitted", "relay denied" },
	{ "unable to relay", "relay denied" },
	{ "authentication failed", "authentication failed" },
	{ "authentication unsuccessful", "authentication failed" },
	{ "authentication failure", "authentication failed" },
	{ "auth failed", "authentication failed" },
	{ "login failed", "authentication failed" },
	{ "invalid credentials", "authentication failed" },
	{ "not accepted", "authentication failed" },	/* "Username and Password not accepted" */
	{ "incorrect password", "authentication failed" },
	{ "wrong password", "authentication failed" },
	{ "неверный пароль", "authentication failed" },
	{ "ошибка аутентификации", "authentication failed" },
	{ "ошибка авторизации", "authentication failed" },
	{ "невірний пароль", "authentication failed" },
	{ "помилка автентифікації", "authentication failed" },
	{ "помилка авторизації", "authentication failed" },
	{ "authentifizierung fehlgeschlagen", "authentication failed" },
	{ "anmeldung fehlgeschlagen", "authentication failed" },
	{ "échec de l'authentification", "authentication failed" },
	{ "echec de l'authentification", "authentication failed" },
	{ "error de autenticación", "authentication failed" },
	{ "autenticación fallida", "authentication failed" },
	{ "uwierzytelnianie nie powiodło", "authentication failed" },
	{ "autenticazione non riuscita", "authentication failed" },
	{ "falha na autenticação", "authentication failed" },
	{ "connection refused", "connection refused" },
	{ "econnrefused", "connection refused" },
	{ "connexion refusée", "connection refused" },
	{ "verbindung abgelehnt", "connection refused" },
	{ "verbindung verweigert", "connection refused" },
	{ "conexión rechazada", "connection refused" },
	{ "połączenie odrzucone", "connection refused" },
	{ "connessione rifiutata", "connection refused" },
	{ "conexão recusada", "connection refused" },
	{ "в соединении отказано", "connection refused" },
	{ "соединение отклонено", "connection refused" },
	{ "з'єднання відхилено", "connection refused" },
	{ "host not found", "host not found" },
	{ "unknown host", "host not found" },
	{ "could not resolve", "host not found" },
	{ "name or service not known", "host not found" },
	{ "cannot locate server", "host not found" },
	{ "timed out", "timed out" },
	{ "timeout", "timed out" },
	{ "time-out", "timed out" },
	{ "время ожидания", "timed out" },
	{ "тайм-аут", "timed out" },
	{ "таймаут", "timed out" },
	{ "час очікування", "timed out" },
	{ "zeitüberschreitung", "timed out" },
	{ "délai d'attente", "timed out" },
	{ "tiempo de espera", "timed out" },
	{ "limit czasu", "timed out" },
	{ "tempo limite", "timed out" },
	{ "tempo esgotado", "timed out" },
	{ "handshake", "tls handshake failed" },
	{ "wrong version number", "tls handshake failed" },
	{ "ssl error", "tls handshake failed" },
	{ "tls error", "tls handshake failed" },
	{ "certificate", "certificate" },
	{ "сертификат", "certificate" },
	{ "сертифікат", "certificate" },
	{ "zertifikat", "certificate" },
	{ "certificat", "certificate" },
	{ "certyfikat", "certificate" },
	{ "certificato", "certificate" },
	{ "connection reset", "connection interrupted" },
};

/* Lines that start quoted text (after trimming, lower-case). */
static const char *const attribution_end[] = {
	"wrote:", "writes:", "пишет:", "написал:", "написала:", "написал(а):",
	"пише:", "написав:", "schrieb:", "a écrit :", "a écrit:", "escribió:",
	"napisał:", "napisała:", "napisał(a):", "ha scritto:", "escreveu:", NULL
};
/* ... also "Am 1. Mai schrieb Ann <ann@x>:" */
static const char *const attribution_verb[] = {
	"schrieb", "a écrit", "escribió", "napisał", "ha scritto", "escreveu",
	"wrote", "пишет", "написал", "пише", "написав", NULL
};
static const char *const separator_words[] = {
	"original message", "исходное сообщение", "ursprüngliche nachricht",
	"message d'origine", "mensaje original", "oryginalna wiadomość",
	"messaggio originale", "mensagem original", "оригінальне повідомлення",
	"forwarded message", "пересылаемое сообщение", "переслане повідомлення",
	NULL
};
static const char *const header_from[] = {
	"from:", "от:", "від:", "von:", "de :", "de:", "od:", "da:", NULL
};
static const char *const header_next[] = {
	"sent:", "date:", "to:", "отправлено:", "надіслано:", "дата:", "кому:",
	"gesendet:", "datum:", "an:", "envoyé :", "envoyé:", "enviado:", "wysłano:",
	"inviato:", "para:", "à :", "do:", "a:", NULL
};

/* ------------------------------------------------------------------ */

struct cand {
	char	name[HOST_MAX + 1];
	int	has[2][2];	/* [quoted][smtp, imap]: a score was recorded */
	int	score[2][2];
	size_t	pos[2][2];
	int	port[2];	/* attached, [quoted]; 0 none */
};

struct hit {			/* a port or a security word */
	int	value;
	int	proto;
	int	quoted;
	int	strength;	/* 3 same line, 2 heading, 1 guessed */
	int	cand;		/* host on the same line, or -1 */
	size_t	pos;
};

struct reply {
	int	found;
	int	enhanced;
	char	code[16];
	size_t	b, e;		/* from the code to the end of the line */
};

struct mh {
	const unsigned char *t;	/* original */
	unsigned char	*f;	/* folded, same length */
	size_t		 n;
	const char	*sender_domain;
	struct cand	 cands[MAX_CANDS];
	size_t		 ncand;
	struct hit	 ports[MAX_HITS];
	size_t		 nport;
	struct hit	 secs[MAX_HITS];
	size_t		 nsec;
	char		*user[2];
	struct reply	 reply[2];
	const char	*hint[2];
	size_t		 hint_pos[2];
	int		 inh_proto, inh_left, inh_quoted;
};

/* One line, as scanned. */
struct kwhit { size_t b, e; const struct kw *k; };
struct hostocc {
	size_t	b, e, pe;	/* token, and its end with an attached port */
	size_t	xe;		/* no keywords before here: a URL's path */
	int	cls;
	int	port;
	int	url;
	int	cand;		/* index in cands, -1 when not kept */
	char	name[HOST_MAX + 1];
};
struct line {
	size_t	b, e;		/* content: after '>' marks and blanks */
	size_t	lim;		/* settings end here (a reply starts) */
	int	quoted;
	int	has_pw;
	struct kwhit kw[MAX_LINE_KW];
	size_t	nkw;
	struct hostocc h[MAX_LINE_HOSTS];
	size_t	nh;
	size_t	sent[MAX_SENTENCES];	/* where sentences end */
	size_t	nsent;
};

static int begins_with_any(const struct mh *m, size_t b, size_t e, const char *const *list);

/* ------------------------------------------------------------------ */
/* Folding and matching                                                */

static unsigned
fold_exta(unsigned cp)
{
	if (((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14a && cp <= 0x177)) && cp % 2 == 0)
		return cp + 1;
	if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e)) && cp % 2 == 1)
		return cp + 1;
	return cp;
}

/* Lower-cases s into d, byte for byte the same length. */
static void
fold(const unsigned char *s, size_t n, unsigned char *d)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = s[i], b = i + 1 < n ? s[i + 1] : 0;

		d[i] = (unsigned char)c;
		if (c >= 'A' && c <= 'Z') {
			d[i] = (unsigned char)(c + 32);
			continue;
		}
		if ((b & 0xc0) != 0x80)
			continue;
		if (c == 0xc3 && b >= 0x80 && b <= 0x9e && b != 0x97)
			b += 0x20;
		else if (c == 0xc4 || c == 0xc5) {
			unsigned cp = fold_exta(((c & 0x1f) << 6) | (b & 0x3f));

			c = 0xc0 | (cp >> 6);
			b = 0x80 | (cp & 0x3f);
		} else if (c == 0xd0 && b <= 0x8f) {
			c = 0xd1;
			b += 0x10;
		} else if (c == 0xd0 && b <= 0x9f)
			b += 0x20;
		else if (c == 0xd0 && b <= 0xaf) {
			c = 0xd1;
			b -= 0x20;
		} else if (c == 0xd2 && b == 0x90)
			b = 0x91;
		d[i] = (unsigned char)c;
		d[++i] = (unsigned char)b;
	}
}

/* A UTF-8 lead byte that starts a letter (roughly: not Latin-1 symbols, not
 * General Punctuation such as NBSP, quotes and dashes). */
static int
letter_lead(unsigned c)
{
	if (c < 0x80)
		return isalnum((int)c) != 0;
	if (c < 0xc3)
		return 0;
	return c != 0xe2;
}

static int
word_before(const struct mh *m, size_t lo, size_t i)
{
	size_t j;

	if (i <= lo)
		return 0;
	j = i - 1;
	while (j > lo && i - j < 4 && (m->f[j] & 0xc0) == 0x80)
		j--;
	return letter_lead(m->f[j]);
}

static int
word_at(const struct mh *m, size_t i, size_t hi)
{
	return i < hi && letter_lead(m->f[i]);
}

static int
blank_at(const struct mh *m, size_t i, size_t hi)
{
	if (i >= hi)
		return 0;
	if (m->f[i] == ' ' || m->f[i] == '\t')
		return 1;
	return m->f[i] == 0xc2 && i + 1 < hi && m->f[i + 1] == 0xa0 ? 2 : 0;
}

/* Matches folded pattern pat at i (not beyond hi); returns its end or 0. */
static size_t
match(const struct mh *m, size_t i, size_t hi, const char *pat)
{
	const unsigned char *p = (const unsigned char *)pat;
	size_t k;

	for (; *p; p++) {
		if (*p == ' ') {
			if ((k = blank_at(m, i, hi)) == 0)
				return 0;
			while ((k = blank_at(m, i, hi)) != 0)
				i += k;
		} else if (*p == '\'') {
			if (i < hi && (m->f[i] == '\'' || m->f[i] == '`'))
				i++;
			else if (i + 2 < hi && m->f[i] == 0xe2 && m->f[i + 1] == 0x80 &&
			    m->f[i + 2] == 0x99)
				i += 3;
			else
				return 0;
		} else {
			if (i >= hi || m->f[i] != *p)
				return 0;
			i++;
		}
	}
	return i;
}

/* The word at i is one of list (whole word); returns its end or 0. */
static size_t
word_in(const struct mh *m, size_t i, size_t hi, const char *const *list)
{
	size_t e;

	for (; *list; list++)
		if ((e = match(m, i, hi, *list)) != 0 && !word_at(m, e, hi))
			return e;
	return 0;
}

static size_t
skip_blanks(const struct mh *m, size_t i, size_t hi)
{
	size_t k;

	while ((k = blank_at(m, i, hi)) != 0)
		i += k;
	return i;
}

static size_t
skip_word(const struct mh *m, size_t i, size_t hi)
{
	while (i < hi && (word_at(m, i, hi) || (m->f[i] & 0xc0) == 0x80))
		i++;
	return i;
}

/* Parses a port at i: 1-5 digits, not part of a longer number, a decimal,
 * a time or a phone number ("12:30", "1.2", "555-1234"). */
static int
port_at(const struct mh *m, size_t i, size_t hi, size_t *endp)
{
	size_t j = i;
	long v = 0;

	if (i > 0 && (isdigit(m->f[i - 1]) || m->f[i - 1] == '+'))
		return 0;
	while (j < hi && isdigit(m->f[j]) && j - i < 6)
		v = v * 10 + (m->f[j++] - '0');
	if (j == i || j - i > 5 || (j < hi && isalnum(m->f[j])))
		return 0;
	if (j + 1 < hi && strchr(".:,-/", m->f[j]) && isdigit(m->f[j + 1]))
		return 0;
	if (v < 1 || v > 65535)
		return 0;
	if (endp)
		*endp = j;
	return (int)v;
}

/* ------------------------------------------------------------------ */
/* Host names                                                          */

static int
hostish(unsigned c)
{
	return isalnum((int)c) || c == '.' || c == '-' || c == '_';
}

static int
in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, s, n) == 0)
			return 1;
	return 0;
}

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* What the first label says about a name of three or more labels. */
static int
host_class(const char *name, int labels)
{
	const char *dot = strchr(name, '.');
	size_t n = (size_t)(dot - name);

	if (labels < 3)
		return H_NONE;
	if (starts(name, "smtp") || starts(name, "submission") ||
	    (n == 3 && starts(name, "out")) || starts(name, "outgoing") ||
	    (n == 4 && starts(name, "send")) || (n == 5 && starts(name, "relay")))
		return H_SMTP;
	if (starts(name, "imap"))
		return H_IMAP;
	if (starts(name, "pop") && (n == 3 || isdigit((unsigned char)name[3])))
		return H_POP;
	if (starts(name, "mail") && (n == 4 || isdigit((unsigned char)name[4]) || name[4] == '-'))
		return H_MAIL;
	if (starts(name, "mx") && (n == 2 || isdigit((unsigned char)name[2])))
		return H_MX;
	if (starts(name, "www") || starts(name, "web"))
		return H_WEB;
	return H_NONE;
}

/*
 * Validates token s[0..n) as a host name (RFC 1123 labels, at most 253
 * bytes, two or more labels, an alphabetic last label of 2+ letters that is
 * not a file ending; "working.Thanks" is a sentence, not a name) or a dotted
 * IPv4 address.  Writes the lower-case name; returns its class or -1.
 */
static int
host_check(const unsigned char *s, size_t n, char *out)
{
	size_t i, lb = 0, labels = 0, last = 0;
	int digits_only = 1, lower = 0, tld_upper = 0;

	if (n == 0 || n > HOST_MAX)
		return -1;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t len = i - lb;

			if (len == 0 || len > 63 || s[lb] == '-' || s[i - 1] == '-')
				return -1;
			if (i < n)
				out[i] = '.';
			labels++;
			last = lb;
			lb = i + 1;
			continue;
		}
		if (!isalnum(s[i]) && s[i] != '-')
			return -1;
		if (!isdigit(s[i]))
			digits_only = 0;
		if (islower(s[i]))
			lower = 1;
		out[i] = (char)tolower(s[i]);
	}
	out[n] = '\0';
	if (labels < 2)
		return -1;
	if (digits_only) {
		const char *p = out;
		int parts = 0;

		if (labels != 4)
			return -1;
		while (parts < 4) {
			char *end;
			long v = strtol(p, &end, 10);

			if (end == p || end - p > 3 || v > 255)
				return -1;
			parts++;
			p = end + (*end == '.');
		}
		return H_IP;
	}
	for (i = last; i < n; i++) {
		if (!isalpha(s[i]) && strncmp(out + last, "xn--", 4) != 0)
			return -1;
		if (isupper(s[i]))
			tld_upper = 1;
	}
	if (n - last < 2 || in_list(out + last, n - last, file_ext))
		return -1;
	if (tld_upper && lower)
		return -1;
	return host_class(out, (int)labels);
}

static int
cand_index(struct mh *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->ncand; i++)
		if (strcmp(m->cands[i].name, name) == 0)
			return (int)i;
	if (m->ncand == MAX_CANDS)
		return -1;
	memset(&m->cands[m->ncand], 0, sizeof(m->cands[0]));
	memcpy(m->cands[m->ncand].name, name, strlen(name) + 1);
	return (int)m->ncand++;
}

/* Finds the host tokens of line l. */
static void
scan_hosts(struct mh *m, struct line *l)
{
	size_t i = l->b, j, e;

	while (i < l->lim) {
		struct hostocc *h;
		char name[HOST_MAX + 1];
		int cls;

		if (!isalnum(m->t[i]) || (i > l->b && hostish(m->t[i - 1]))) {
			i++;
			continue;
		}
		for (j = i; j < l->lim && hostish(m->t[j]); j++)
			;
		e = j;
		while (e > i && (m->t[e - 1] == '.' || m->t[e - 1] == '-'))
			e--;
		/* Never an e-mail address: neither its local part nor its domain. */
		if ((i > l->b && m->t[i - 1] == '@') || (e < l->lim && m->t[e] == '@') ||
		    (j < l->lim && m->t[j] == '@') || l->nh == MAX_LINE_HOSTS ||
		    (cls = host_check(m->t + i, e - i, name)) < 0) {
			i = j;
			continue;
		}
		h = &l->h[l->nh++];
		memset(h, 0, sizeof(*h));
		h->b = i;
		h->e = h->pe = e;
		h->cls = cls;
		h->cand = -1;
		memcpy(h->name, name, sizeof(name));
		h->url = (i >= l->b + 3 && memcmp(m->t + i - 3, "://", 3) == 0) ||
		    (e < l->lim && m->t[e] == '/');
		for (h->xe = e; h->url && h->xe < l->lim && m->t[h->xe] > ' '; h->xe++)
			;
		if (e + 1 < l->lim && m->t[e] == ':' && isdigit(m->t[e + 1]))
			h->port = port_at(m, e + 1, l->lim, &h->pe);
		else {
			/* "smtp.example.com 587", "smtp.example.com (465)" */
			size_t k = e, q;
			int p;

			while (k < l->lim && k - e < 3 && strchr(" ,(\t", m->t[k]))
				k++;
			if (k > e && k < l->lim && isdigit(m->t[k]) &&
			    (p = port_at(m, k, l->lim, &q)) != 0 && known_port(p) &&
			    !(q < l->lim && m->t[q] == ':')) {
				h->port = p;
				h->pe = q;
			}
		}
		i = j;
	}
}

static int
inside_host(const struct line *l, size_t i)
{
	size_t k;

	for (k = 0; k < l->nh; k++)
		if (i >= l->h[k].b && i < l->h[k].xe)
			return 1;
	return 0;
}

static void
scan_keywords(struct mh *m, struct line *l)
{
	size_t i, k, e;

	for (i = l->b; i < l->lim && l->nkw < MAX_LINE_KW; i++) {
		if ((m->f[i] & 0xc0) == 0x80 || word_before(m, l->b, i) || inside_host(l, i))
			continue;
		if (!word_at(m, i, l->lim))
			continue;
		for (k = 0; k < sizeof(kws) / sizeof(kws[0]) && l->nkw < MAX_LINE_KW; k++) {
			if ((unsigned char)kws[k].pat[0] != m->f[i])
				continue;
			if ((e = match(m, i, l->lim, kws[k].pat)) == 0)
				continue;
			if (kws[k].end && word_at(m, e, l->lim))
				continue;
			if (kws[k].kind == K_PW)
				l->has_pw = 1;
			l->kw[l->nkw].b = i;
			l->kw[l->nkw].e = e;
			l->kw[l->nkw].k = &kws[k];
			l->nkw++;
		}
	}
}

/*
 * The context at [b, e) on line l: the nearest context word (one after
 * it counts 4 bytes farther).  Returns the protocol, *dist its distance.
 */
static size_t
sentence(const struct line *l, size_t pos)
{
	size_t k;

	for (k = 0; k < l->nsent && l->sent[k] < pos; k++)
		;
	return k;
}

/* Notes where sentences end ('.', '!', '?', ';' before a blank): context
 * does not reach across them. */
static void
scan_sentences(const struct mh *m, struct line *l)
{
	size_t i;

	l->nsent = 0;
	for (i = l->b; i + 1 < l->lim && l->nsent < MAX_SENTENCES; i++)
		if (strchr(".!?;", m->f[i]) && m->f[i] != '\0' && blank_at(m, i + 1, l->lim))
			l->sent[l->nsent++] = i;
}

static int
line_ctx(const struct line *l, size_t b, size_t e, size_t *dist)
{
	size_t k, best = (size_t)-1, d, here = sentence(l, b);
	int proto = P_NONE;

	for (k = 0; k < l->nkw; k++) {
		if (l->kw[k].k->kind != K_CTX || sentence(l, l->kw[k].b) != here)
			continue;
		if (l->kw[k].e <= b)
			d = b - l->kw[k].e;
		else if (l->kw[k].b >= e)
			d = l->kw[k].b - e + 4;
		else
			continue;
		if (d < best || (d == best && l->kw[k].e <= b)) {
			best = d;
			proto = l->kw[k].k->val;
		}
	}
	*dist = best;
	return proto;
}

static int
label_before(const struct line *l, size_t pos)
{
	size_t k;

	for (k = 0; k < l->nkw; k++)
		if (l->kw[k].k->kind == K_LABEL && l->kw[k].e <= pos)
			return 1;
	return 0;
}

static int
has_kind(const struct line *l, int kind)
{
	size_t k;

	for (k = 0; k < l->nkw; k++)
		if (l->kw[k].k->kind == kind)
			return 1;
	return 0;
}

static int
inherited(const struct mh *m, const struct line *l)
{
	return m->inh_left > 0 && m->inh_quoted == l->quoted ? m->inh_proto : P_NONE;
}

/* Score of host occurrence h for protocol want (P_SMTP or P_IMAP). */
static int
host_score(const struct mh *m, const struct line *l, const struct hostocc *h, int want)
{
	static const int prefix[][2] = {	/* [class][smtp, imap] */
		[H_NONE] = { 0, 0 }, [H_SMTP] = { 5, -5 }, [H_IMAP] = { -5, 5 },
		[H_MAIL] = { 3, 0 }, [H_POP] = { -5, -5 }, [H_MX] = { 1, -2 },
		[H_WEB] = { -5, -5 }, [H_IP] = { 0, 0 },
	};
	size_t dist, tb, te;
	int proto, inh, score, label, near = 0, alone, generic;
	int w = want == P_SMTP ? 0 : 1;

	score = prefix[h->cls][w];
	proto = line_ctx(l, h->b, h->e, &dist);
	label = label_before(l, h->b);
	tb = l->b;
	te = l->lim;
	while (te > tb && strchr(" \t.,;)'\"", m->t[te - 1]))
		te--;
	while (tb < te && strchr(" \t('\"", m->t[tb]))
		tb++;
	alone = tb == h->b && te == h->pe;
	if (proto != P_NONE) {
		score += proto == want ? 4 : -4;
		near = proto == want && dist <= NEAR;
		score += near ? 2 : 0;
	} else if ((inh = inherited(m, l)) != P_NONE && (label || alone || h->cls != H_NONE))
		score += inh == want ? 3 : -3;
	if (label)
		score += 2;
	if (h->port && ((want == P_SMTP && h->port != 143 && h->port != 993 &&
	    h->port != 110 && h->port != 995) || (want == P_IMAP && (h->port == 143 ||
	    h->port == 993))))
		score += 1;
	if (m->sender_domain && *m->sender_domain) {
		size_t hn = strlen(h->name), dn = strlen(m->sender_domain);

		if (hn >= dn && strcasecmp(h->name + hn - dn, m->sender_domain) == 0 &&
		    (hn == dn || h->name[hn - dn - 1] == '.'))
			score += 1;
	}
	/* A name that says nothing itself needs a label or a close context. */
	generic = h->cls == H_NONE || h->cls == H_IP || h->cls == H_MX;
	if (generic && !label && !near && !(alone && inherited(m, l) == want))
		score = score < 0 ? score : 0;
	/* URLs are web pages unless labelled as the mail server. */
	if (h->url && !(proto == want && (label || near)))
		return -100;
	return score;
}

static void
record_hosts(struct mh *m, struct line *l)
{
	size_t k;
	int q = l->quoted, w;

	for (k = 0; k < l->nh; k++) {
		struct hostocc *h = &l->h[k];
		struct cand *c;
		int ci = cand_index(m, h->name);

		h->cand = ci;
		if (ci < 0)
			continue;
		c = &m->cands[ci];
		for (w = 0; w < 2; w++) {
			int s = host_score(m, l, h, w == 0 ? P_SMTP : P_IMAP);

			if (!c->has[q][w] || s > c->score[q][w]) {
				c->has[q][w] = 1;
				c->score[q][w] = s;
				c->pos[q][w] = h->b;
			}
		}
		if (h->port && c->port[q] == 0 && !h->url)
			c->port[q] = h->port;
	}
}

/*
 * The protocol a port or security word at [b, e) belongs to, and how sure
 * that is (3 same line, 2 heading, 1 guessed); *cand: the host on the line.
 */
static int
value_proto(const struct mh *m, const struct line *l, size_t b, size_t e, int port,
    int *strength, int *cand)
{
	size_t dist, k;
	int proto = line_ctx(l, b, e, &dist);
	const struct hostocc *near_host = NULL;

	for (k = 0; k < l->nh; k++)
		if (l->h[k].b < b || near_host == NULL)
			near_host = &l->h[k];
	*cand = near_host ? near_host->cand : -1;
	*strength = 3;
	if (proto != P_NONE)
		return proto;
	if (near_host && (near_host->cls == H_SMTP || near_host->cls == H_MAIL))
		return P_SMTP;
	if (near_host && near_host->cls == H_IMAP)
		return P_IMAP;
	if ((proto = inherited(m, l)) != P_NONE) {
		*strength = 2;
		return proto;
	}
	*strength = 1;
	if (port == 143 || port == 993)
		return P_IMAP;
	if (port == 110 || port == 995)
		return P_POP;
	return P_SMTP;
}

static void
add_hit(struct hit *arr, size_t *n, int value, int proto, int quoted, int strength,
    int cand, size_t pos)
{
	if (*n == MAX_HITS || proto == P_POP || proto == P_NONE)
		return;
	arr[*n].value = value;
	arr[*n].proto = proto;
	arr[*n].quoted = quoted;
	arr[*n].strength = strength;
	arr[*n].cand = cand;
	arr[*n].pos = pos;
	(*n)++;
}

static void
record_ports(struct mh *m, struct line *l)
{
	size_t k, i, q;
	int v, proto, strength, cand;

	for (k = 0; k < l->nkw; k++) {
		int words = 0;

		if (l->kw[k].k->kind != K_PORT)
			continue;
		/* "port 465", "Port: 587", "port number is 25", "Port (SMTP): 2525" */
		for (i = l->kw[k].e; i < l->lim && i - l->kw[k].e < 32; ) {
			if (isdigit(m->f[i]))
				break;
			if (word_at(m, i, l->lim)) {
				if (++words > 1)
					break;
				i = skip_word(m, i, l->lim);
			} else if (strchr(" \t:=#()'\"", m->f[i]))
				i++;
			else if (blank_at(m, i, l->lim) == 2)
				i += 2;
			else if (match(m, i, l->lim, "№"))
				i += 3;
			else
				break;
		}
		if (i < l->lim && isdigit(m->f[i]) && (v = port_at(m, i, l->lim, &q)) != 0) {
			proto = value_proto(m, l, l->kw[k].b, q, v, &strength, &cand);
			add_hit(m->ports, &m->nport, v, proto, l->quoted, strength, cand, i);
		}
	}
	/* Outlook's Advanced tab: "Outgoing server (SMTP): 587". */
	if (l->nh == 0 && has_kind(l, K_CTX) && has_kind(l, K_LABEL) && !has_kind(l, K_PORT)) {
		const unsigned char *colon = memchr(m->f + l->b, ':', l->lim - l->b);

		if (colon != NULL) {
			i = skip_blanks(m, (size_t)(colon - m->f) + 1, l->lim);
			if (i < l->lim && isdigit(m->f[i]) && (v = port_at(m, i, l->lim, &q)) != 0 &&
			    skip_blanks(m, q, l->lim) == l->lim) {
				proto = value_proto(m, l, (size_t)(colon - m->f), i, v, &strength, &cand);
				add_hit(m->ports, &m->nport, v, proto, l->quoted, strength, cand, i);
			}
		}
	}
}

/* The word before i on the line, if it is one of list. */
static int
word_before_in(const struct mh *m, const struct line *l, size_t i, const char *const *list)
{
	size_t e = i, b;

	while (e > l->b && strchr(" \t(", m->f[e - 1]))
		e--;
	b = e;
	while (b > l->b && word_before(m, l->b, b))
		b--;
	while (b < e && (m->f[b] & 0xc0) == 0x80)
		b++;
	return b < e && word_in(m, b, e, list) == e;
}

static void
record_security(struct mh *m, struct line *l)
{
	size_t k, i;
	int proto, strength, cand;

	for (k = 0; k < l->nkw; k++) {
		const struct kwhit *kh = &l->kw[k];
		int sec = kh->k->val;

		if (kh->k->kind == K_SECLABEL && !l->has_pw) {
			/* "Connection security: None", "Шифрование: нет" */
			int words = 0;

			for (i = skip_word(m, kh->b, l->lim); i < l->lim && words < 5; ) {
				if (word_at(m, i, l->lim)) {
					if (word_in(m, i, l->lim, none_words)) {
						proto = value_proto(m, l, kh->b, i, 0, &strength, &cand);
						add_hit(m->secs, &m->nsec, S_NONE, proto, l->quoted,
						    strength, cand, i);
						break;
					}
					words++;
					i = skip_word(m, i, l->lim);
				} else if (strchr(",;.!?", m->f[i]))
					break;
				else
					i++;
			}
			continue;
		}
		if (kh->k->kind != K_SEC)
			continue;
		i = skip_blanks(m, kh->e, l->lim);
		if (i < l->lim && m->f[i] == '-')
			i = skip_blanks(m, i + 1, l->lim);
		if (sec != S_NONE) {
			const char *const *p;
			size_t j = i;

			/* stems: "handshake failed", "certificate", "TLS 1.2" */
			for (p = sec_not_setting; *p; p++)
				if (match(m, i, l->lim, *p))
					break;
			if (*p)
				continue;
			/* "Secure(SSL): No", "Use SSL: yes" */
			while (j < l->lim && (m->f[j] == ')' || m->f[j] == ' '))
				j++;
			if (j < l->lim && m->f[j] == ':') {
				j = skip_blanks(m, j + 1, l->lim);
				if (word_in(m, j, l->lim, none_words))
					sec = S_NONE;
				else if (!word_in(m, j, l->lim, yes_words) && j < l->lim &&
				    word_at(m, j, l->lim) && !match(m, j, l->lim, "ssl") &&
				    !match(m, j, l->lim, "tls") && !match(m, j, l->lim, "starttls"))
					continue;	/* a label of something else */
			}
			if (word_before_in(m, l, kh->b, neg_before) ||
			    (i < l->lim && word_in(m, i, l->lim, neg_after)))
				sec = S_NONE;
		}
		proto = value_proto(m, l, kh->b, kh->e, 0, &strength, &cand);
		if (sec == S_SMTPS) {
			proto = P_SMTP;
			sec = S_TLS;
		} else if (sec == S_IMAPS) {
			proto = P_IMAP;
			sec = S_TLS;
		}
		add_hit(m->secs, &m->nsec, sec, proto, l->quoted, strength, cand, kh->b);
	}
}

static void
record_user(struct mh *m, struct line *l)
{
	size_t k, i, b, e;

	if (m->user[l->quoted] != NULL)
		return;
	for (k = 0; k < l->nkw; k++) {
		if (l->kw[k].k->kind != K_USER)
			continue;
		i = skip_blanks(m, l->kw[k].e, l->lim);
		if (i >= l->lim || (m->f[i] != ':' && m->f[i] != '='))
			continue;
		b = skip_blanks(m, i + 1, l->lim);
		while (b < l->lim && strchr("\"'<", m->t[b]))
			b++;
		/* "Login:alice:s3cret", "user/pass": the password is never taken */
		for (e = b; e < l->lim && m->t[e] > ' ' && m->t[e] < 0x7f &&
		    m->t[e] != ':' && m->t[e] != '/'; e++)
			;
		while (e > b && strchr(",;.\"'>", m->t[e - 1]))
			e--;
		if (e == b || e - b > MAILHINTS_USER_MAX || (e < l->lim && m->t[e] >= 0x80) ||
		    (e < l->lim && m->t[e] == ':' && (e + 1 == l->lim || m->t[e + 1] == ' ')))
			continue;
		m->user[l->quoted] = xstrndup((const char *)m->t + b, e - b);
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Server replies and error hints                                      */

static const char *
reply_hint(const struct mh *m, const struct reply *r)
{
	size_t n = r->e - r->b;
	const char *s = (const char *)m->f + r->b;
	const char *code = r->code;

#define HAS(x) (memmem(s, n, (x), strlen(x)) != NULL)
	if (HAS("starttls"))
		return "starttls required";
	if (HAS("relay"))
		return "relay denied";
	if (HAS("authentication required") || HAS("not authenticated") ||
	    HAS("5.7.57") || (starts(code, "530") && !HAS("fail")))
		return "authentication required";
	if (starts(code, "535") || starts(code, "534") || HAS("5.7.8") || HAS("5.7.3 ") ||
	    HAS("5.7.139") || HAS("authentication") || HAS("credentials") || HAS("password"))
		return "authentication failed";
	if (HAS("blocked") || HAS("spamhaus") || HAS("blacklist") || HAS("block list") ||
	    HAS("blocklist"))
		return "blocked by policy";
	if (HAS("sender") || HAS("5.1.7") || HAS("5.1.8") || HAS("send as"))
		return "sender rejected";
	if (HAS("5.1.1") || HAS("recipient") || HAS("user unknown"))
		return "recipient rejected";
	if (starts(code, "554") || (starts(code, "550") && HAS("5.7.1")))
		return "relay denied";
	if (starts(code, "421"))
		return "service unavailable";
	if (code[0] == '4')
		return "temporary failure";
#undef HAS
	return "rejected";
}

/* Words that a server's error reply uses and a sentence such as "550
 * customers" does not. */
static const char *const reply_words[] = {
	"denied", "reject", "relay", "auth", "unavailable", "refused", "error",
	"unknown", "required", "must", "mailbox", "sender", "recipient", "tls",
	"command", "syntax", "blocked", "policy", "exceeded", "try again",
	"temporar", "too many", "closing", "service", "invalid", "incorrect",
	"credentials", "password", "access", "spam", "not accepted", "failed",
	"failure", "not allowed", "unrecognized", NULL
};

/*
 * A reply at i ("535 5.7.8 text", "554-5.7.1 text", "550 Relay denied"):
 * the code 4xx/5xx, an enhanced code of the same class, or, without one,
 * a reply at the start of the line or after ':' with telling words.
 * start: i is where the line's content begins.
 */
static int
reply_at(const struct mh *m, size_t i, size_t hi, int start, struct reply *r)
{
	const unsigned char *f = m->f;
	size_t j, eb = 0, ee = 0;
	const char *const *w;

	if (i + 4 > hi || (f[i] != '4' && f[i] != '5') || f[i + 1] < '0' || f[i + 1] > '5' ||
	    !isdigit(f[i + 2]) || (f[i + 3] != ' ' && f[i + 3] != '-'))
		return 0;
	j = i + 4;
	/* enhanced status: class.subject(1-3).detail(1-3) */
	if (j + 5 <= hi && f[j] == f[i] && f[j + 1] == '.') {
		size_t a = j + 2, d1, d2;

		for (d1 = a; d1 < hi && isdigit(f[d1]) && d1 - a < 4; d1++)
			;
		if (d1 > a && d1 - a <= 3 && d1 < hi && f[d1] == '.') {
			for (d2 = d1 + 1; d2 < hi && isdigit(f[d2]) && d2 - d1 < 5; d2++)
				;
			if (d2 > d1 + 1 && d2 - d1 - 1 <= 3 && (d2 == hi || f[d2] == ' ')) {
				eb = j;
				ee = d2;
			}
		}
	}
	if (ee == 0) {
		size_t t = skip_blanks(m, j, hi);

		if (!start || t >= hi || !isalpha(f[t]))
			return 0;
		for (w = reply_words; *w; w++)
			if (memmem(f + j, hi - j, *w, strlen(*w)) != NULL)
				break;
		if (*w == NULL)
			return 0;
	}
	r->found = 1;
	r->enhanced = ee != 0;
	if (ee)
		snprintf(r->code, sizeof(r->code), "%.3s %.*s", (const char *)f + i,
		    (int)(ee - eb), (const char *)f + eb);
	else
		snprintf(r->code, sizeof(r->code), "%.3s", (const char *)f + i);
	r->b = i;
	r->e = hi;
	while (r->e > r->b && (f[r->e - 1] == ' ' || f[r->e - 1] == '\t' || f[r->e - 1] == '\r'))
		r->e--;
	return 1;
}

/* Looks for a reply on line [b, e); returns where it starts, or e. */
static size_t
scan_reply(struct mh *m, const struct line *l)
{
	size_t i;
	struct reply r;
	struct reply *keep = &m->reply[l->quoted];

	/* a pasted session transcript: "220 mx.example.com ESMTP", "250-SIZE" */
	static const char *const transcript[] = {
		"220 ", "220-", "221 ", "235 ", "250 ", "250-", "251 ", "334 ", "354 ", NULL
	};

	if (begins_with_any(m, l->b, l->e, transcript))
		return l->b;
	for (i = l->b; i + 4 <= l->e; i++) {
		int start;

		if (!isdigit(m->f[i]) || (i > l->b && !strchr(" :\"'([", m->f[i - 1])))
			continue;
		start = i == l->b || m->f[i - 1] == ':' ||
		    (i >= l->b + 2 && m->f[i - 2] == ':' && m->f[i - 1] == ' ');
		memset(&r, 0, sizeof(r));
		if (!reply_at(m, i, l->e, start, &r))
			continue;
		if (!keep->found || (r.enhanced && !keep->enhanced))
			*keep = r;
		return i;
	}
	return l->e;
}

static void
scan_hints(struct mh *m, const struct line *l)
{
	size_t k, len = l->e - l->b;
	const char *s = (const char *)m->f + l->b;
	int q = l->quoted;

	if (m->hint[q] != NULL)
		return;		/* the first line with one decides */
	for (k = 0; k < sizeof(hints) / sizeof(hints[0]); k++) {
		const char *p = memmem(s, len, hints[k].pat, strlen(hints[k].pat));

		if (p && (m->hint[q] == NULL || (size_t)(p - s) < m->hint_pos[q])) {
			m->hint[q] = hints[k].hint;
			m->hint_pos[q] = (size_t)(p - s);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Quoted text                                                         */

static int
ends_with(const struct mh *m, size_t b, size_t e, const char *suffix)
{
	size_t n = strlen(suffix);

	return e - b >= n && memcmp(m->f + e - n, suffix, n) == 0;
}

static int
begins_with_any(const struct mh *m, size_t b, size_t e, const char *const *list)
{
	for (; *list; list++)
		if (e - b >= strlen(*list) && memcmp(m->f + b, *list, strlen(*list)) == 0)
			return 1;
	return 0;
}

static int
contains_any(const struct mh *m, size_t b, size_t e, const char *const *list)
{
	for (; *list; list++)
		if (memmem(m->f + b, e - b, *list, strlen(*list)) != NULL)
			return 1;
	return 0;
}

static void
trim(const struct mh *m, size_t *b, size_t *e)
{
	while (*b < *e && (m->f[*b] == ' ' || m->f[*b] == '\t'))
		(*b)++;
	while (*e > *b && strchr(" \t\r", m->f[*e - 1]))
		(*e)--;
}

static size_t
line_end(const struct mh *m, size_t i)
{
	const unsigned char *nl = memchr(m->f + i, '\n', m->n - i);

	return nl ? (size_t)(nl - m->f) : m->n;
}

/* Where quoted text starts after line [b, e): 1 from the next line on,
 * 2 only '>' lines (the client answers below a '>' quote), 0 not at all. */
static int
quote_marker(const struct mh *m, size_t b, size_t e, size_t next)
{
	const char *const *p;
	int attribution = 0;

	trim(m, &b, &e);
	if (e - b >= 3 && (m->f[b] == '-' || m->f[b] == '_') &&
	    contains_any(m, b, e, separator_words))
		return 1;
	if (e - b == 32 && m->f[b] == '_' && m->f[e - 1] == '_')
		return 1;		/* Outlook's rule above its header block */
	if (begins_with_any(m, b, e, header_from) && next < m->n) {
		size_t nb = next, ne = line_end(m, next);

		trim(m, &nb, &ne);
		if (begins_with_any(m, nb, ne, header_next))
			return 1;
	}
	for (p = attribution_end; *p && !attribution; p++)
		attribution = ends_with(m, b, e, *p);
	if (!attribution && e > b && m->f[e - 1] == ':' && e - b < 300)
		attribution = contains_any(m, b, e, attribution_verb) &&
		    (memchr(m->f + b, '@', e - b) != NULL || memchr(m->f + b, '<', e - b) != NULL);
	if (!attribution)
		return 0;
	/* the next non-blank line */
	while (next < m->n) {
		size_t nb = next, ne = line_end(m, next);

		trim(m, &nb, &ne);
		if (nb < ne)
			return m->f[nb] == '>' ? 2 : 1;
		next = ne + 1;
	}
	return 1;
}

/* ------------------------------------------------------------------ */

static int
is_heading(const struct mh *m, const struct line *l)
{
	size_t b = l->b, e = l->lim;

	trim(m, &b, &e);
	if (e - b > HEADING_MAX || !has_kind(l, K_CTX))
		return 0;
	return has_kind(l, K_LABEL) || has_kind(l, K_SETTINGS) || (e > b && m->f[e - 1] == ':');
}

static int
last_ctx(const struct line *l)
{
	size_t k;
	int p = P_NONE;

	for (k = 0; k < l->nkw; k++)
		if (l->kw[k].k->kind == K_CTX)
			p = l->kw[k].k->val;
	return p;
}

static void
scan_line(struct mh *m, struct line *l)
{
	l->lim = scan_reply(m, l);
	scan_hints(m, l);
	scan_sentences(m, l);
	scan_hosts(m, l);
	scan_keywords(m, l);
	record_hosts(m, l);
	record_ports(m, l);
	record_security(m, l);
	record_user(m, l);
	if (is_heading(m, l)) {
		m->inh_proto = last_ctx(l);
		m->inh_left = INHERIT_LINES;
		m->inh_quoted = l->quoted;
	} else if (m->inh_left > 0)
		m->inh_left--;
}

static void
scan_text(struct mh *m)
{
	size_t i = 0;
	int rest_quoted = 0, gt_only = 0, sig = 0;
	struct line *l = xmalloc(sizeof(*l));

	while (i < m->n) {
		size_t e = line_end(m, i), b = i, next = e + 1;
		int gt = 0, mark;

		while (b < e && (m->f[b] == ' ' || m->f[b] == '\t' || m->f[b] == '>')) {
			gt |= m->f[b] == '>';
			b++;
		}
		memset(l, 0, offsetof(struct line, kw));
		l->nkw = l->nh = 0;
		l->b = b;
		l->e = e;
		while (l->e > l->b && (m->f[l->e - 1] == '\r' || m->f[l->e - 1] == ' '))
			l->e--;
		l->quoted = gt || rest_quoted || sig;
		if (!gt && !rest_quoted) {
			size_t sb = b, se = l->e;

			trim(m, &sb, &se);
			if (se - sb == 2 && memcmp(m->f + sb, "--", 2) == 0 && !gt_only) {
				sig = 1;
				l->quoted = 1;
			}
		}
		if (l->b < l->e)
			scan_line(m, l);
		if (!gt && !rest_quoted && (mark = quote_marker(m, i, e, next < m->n ? next : m->n)) != 0) {
			if (mark == 1)
				rest_quoted = 1;
			else
				gt_only = 1;
		}
		i = next;
	}
	free(l);
}

/* ------------------------------------------------------------------ */
/* Choosing                                                            */

static char *
pick_host(const struct mh *m, int w, int *ci)
{
	int q, best = -1;
	size_t k;

	for (q = 0; q < 2; q++) {
		for (k = 0; k < m->ncand; k++) {
			const struct cand *c = &m->cands[k];

			if (!c->has[q][w] || c->score[q][w] < HOST_THRESHOLD)
				continue;
			if (best < 0 || c->score[q][w] > m->cands[best].score[q][w] ||
			    (c->score[q][w] == m->cands[best].score[q][w] &&
			    c->pos[q][w] < m->cands[best].pos[q][w]))
				best = (int)k;
		}
		if (best >= 0)
			break;
	}
	*ci = best;
	return best >= 0 ? xstrdup(m->cands[best].name) : NULL;
}

/* The best hit for proto: own text first, then on the chosen host's line,
 * then the surest context, then the first. */
static const struct hit *
pick_hit(const struct hit *arr, size_t n, int proto, int ci)
{
	const struct hit *best = NULL;
	size_t k;

	for (k = 0; k < n; k++) {
		const struct hit *h = &arr[k];
		int hb, bb;

		if (h->proto != proto)
			continue;
		if (best == NULL) {
			best = h;
			continue;
		}
		if (h->quoted != best->quoted) {
			if (!h->quoted)
				best = h;
			continue;
		}
		hb = ci >= 0 && h->cand == ci;
		bb = ci >= 0 && best->cand == ci;
		if (hb != bb) {
			if (hb)
				best = h;
			continue;
		}
		if (h->strength > best->strength)
			best = h;
	}
	return best;
}

static void
pick_proto(const struct mh *m, int w, char **host, int *port, int *security)
{
	int proto = w == 0 ? P_SMTP : P_IMAP, ci;
	const struct hit *h;

	*host = pick_host(m, w, &ci);
	*port = 0;
	if (ci >= 0)
		*port = m->cands[ci].port[0] ? m->cands[ci].port[0] : m->cands[ci].port[1];
	if (*port == 0 && (h = pick_hit(m->ports, m->nport, proto, ci)) != NULL)
		*port = h->value;
	*security = -1;
	if ((h = pick_hit(m->secs, m->nsec, proto, ci)) != NULL) {
		switch (h->value) {
		case S_TLS:
			*security = DIAG_SEC_TLS;
			break;
		case S_NONE:
			*security = DIAG_SEC_NONE;
			break;
		default:	/* bare "TLS": STARTTLS, but implicit on the TLS ports */
			*security = *port == 465 || *port == 993 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
			break;
		}
	}
}

static char *
sanitise(const unsigned char *s, size_t n)
{
	char *out;
	size_t i, k = 0;

	if (n > MAILHINTS_REPLY_MAX)
		n = MAILHINTS_REPLY_MAX;
	out = xmalloc(n + 1);
	for (i = 0; i < n; i++) {
		if (s[i] >= 0x80) {
			/* one '?' per character, not per byte */
			if ((s[i] & 0xc0) != 0x80)
				out[k++] = '?';
		} else
			out[k++] = s[i] < 0x20 || s[i] == 0x7f ? ' ' : (char)s[i];
	}
	out[k] = '\0';
	return out;
}

int
mail_hints_parse(const char *text, size_t len, const char *sender_domain,
    struct mail_hints *out)
{
	struct mh *m;
	const struct reply *r;
	int found = 0;

	memset(out, 0, sizeof(*out));
	out->smtp_security = out->imap_security = -1;
	if (text == NULL)
		return 0;
	m = xcalloc(1, sizeof(*m));
	m->t = (const unsigned char *)text;
	m->n = len > MAILHINTS_INPUT_MAX ? MAILHINTS_INPUT_MAX : len;
	m->f = xmalloc(m->n + 1);
	fold(m->t, m->n, m->f);
	m->f[m->n] = '\0';
	m->sender_domain = sender_domain;
	scan_text(m);

	pick_proto(m, 0, &out->smtp_host, &out->smtp_port, &out->smtp_security);
	pick_proto(m, 1, &out->imap_host, &out->imap_port, &out->imap_security);
	out->user = m->user[0] ? m->user[0] : m->user[1];
	free(m->user[out->user == m->user[0] ? 1 : 0]);
	r = m->reply[0].found ? &m->reply[0] : m->reply[1].found ? &m->reply[1] : NULL;
	if (r != NULL) {
		out->reply_code = xstrdup(r->code);
		out->reply_text = sanitise(m->t + r->b, r->e - r->b);
		out->error_hint = reply_hint(m, r);
	} else
		out->error_hint = m->hint[0] ? m->hint[0] : m->hint[1];

	found = (out->smtp_host != NULL) + (out->smtp_port != 0) + (out->smtp_security >= 0) +
	    (out->imap_host != NULL) + (out->imap_port != 0) + (out->imap_security >= 0) +
	    (out->user != NULL) + (out->reply_code != NULL) + (out->error_hint != NULL);
	free(m->f);
	free(m);
	return found;
}

void
mail_hints_free(struct mail_hints *h)
{
	if (h == NULL)
		return;
	free(h->smtp_host);
	free(h->imap_host);
	free(h->user);
	free(h->reply_code);
	free(h->reply_text);
	memset(h, 0, sizeof(*h));
	h->smtp_security = h->imap_security = -1;
}
