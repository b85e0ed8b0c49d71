/*
 * test_mailhints - settings from what clients write: a table of realistic
 * messages (languages, pasted Outlook / Thunderbird / Apple Mail settings,
 * pasted server replies, misleading text), each with every field expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "mailhints.h"
#include "t.h"

#define U	(-1)			/* security not said */
#define TLS	DIAG_SEC_TLS
#define STL	DIAG_SEC_STARTTLS
#define NONE	DIAG_SEC_NONE

struct tcase {
	const char	*name;
	const char	*text;
	const char	*domain;
	const char	*smtp_host;
	int		 smtp_port;
	int		 smtp_sec;
	const char	*imap_host;
	int		 imap_port;
	int		 imap_sec;
	const char	*user;
	const char	*code;
	const char	*hint;
};

static const struct tcase cases[] = {
	/* ---- plain prose, many languages ---- */
	{ "en prose host port ssl",
	  "Hi,\nmy outgoing mail is not being sent since this morning. I use\n"
	  "smtp.client.test with port 465 and SSL. Please help!\n",
	  "client.test", "smtp.client.test", 465, TLS, NULL, 0, U, NULL, NULL, NULL },
	{ "en host:port starttls",
	  "Outgoing server is mail.client.test:587, STARTTLS. Nothing goes out.\n",
	  NULL, "mail.client.test", 587, STL, NULL, 0, U, NULL, NULL, NULL },
	{ "ru prose",
	  "Здравствуйте! Не отправляются письма. Сервер исходящей почты smtp.firma.ru, "
	  "порт 25, без шифрования.\n",
	  "firma.ru", "smtp.firma.ru", 25, NONE, NULL, 0, U, NULL, NULL, NULL },
	{ "ru capital letters and SSL",
	  "ИСХОДЯЩИЙ СЕРВЕР: SMTP.YANDEX.RU ПОРТ 465 SSL\n",
	  NULL, "smtp.yandex.ru", 465, TLS, NULL, 0, U, NULL, NULL, NULL },
	{ "uk prose",
	  "Добрий день, не надсилаються листи. Сервер вихідної пошти: mail.kompania.ua, "
	  "порт 587, STARTTLS. Вхідна пошта (imap.kompania.ua) працює.\n",
	  NULL, "mail.kompania.ua", 587, STL, "imap.kompania.ua", 0, U, NULL, NULL, NULL },
	{ "de prose",
	  "Hallo, seit gestern gehen keine Mails raus. Postausgangsserver: "
	  "smtp.beispiel.de Port 587 mit STARTTLS, Benutzername: max@beispiel.de\n",
	  NULL, "smtp.beispiel.de", 587, STL, NULL, 0, U, "max@beispiel.de", NULL, NULL },
	{ "fr prose",
	  "Bonjour, mes e-mails ne partent plus. Serveur sortant : ssl0.ovh.net, port 465 "
	  "(SSL). Nom d'utilisateur : contact@maboite.fr\n",
	  NULL, "ssl0.ovh.net", 465, TLS, NULL, 0, U, "contact@maboite.fr", NULL, NULL },
	{ "es prose",
	  "Hola, no puedo enviar correos. El servidor de salida es smtp.empresa.es, "
	  "puerto 587 con TLS.\n",
	  NULL, "smtp.empresa.es", 587, STL, NULL, 0, U, NULL, NULL, NULL },
	{ "pl prose",
	  "Dzień dobry, poczta nie wychodzi. Serwer poczty wychodzącej: poczta.firma.pl, "
	  "port 465, SSL/TLS. Przychodząca działa.\n",
	  NULL, "poczta.firma.pl", 465, TLS, NULL, 0, U, NULL, NULL, NULL },
	{ "it prose",
	  "Buongiorno, la posta in uscita non parte. Server posta in uscita: "
	  "smtps.aruba.it porta 465 SSL. Nome utente: info@azienda.it\n",
	  NULL, "smtps.aruba.it", 465, TLS, NULL, 0, U, "info@azienda.it", NULL, NULL },
	{ "pt prose",
	  "Olá, os emails não saem. Servidor de saída: smtp.empresa.com.br, porta 587, "
	  "sem criptografia.\n",
	  NULL, "smtp.empresa.com.br", 587, NONE, NULL, 0, U, NULL, NULL, NULL },

	/* ---- pasted client settings ---- */
	{ "thunderbird outgoing server",
	  "Here are my settings:\n\nOutgoing Server (SMTP) Settings\n"
	  "Description: work\nServer Name: smtp.client.test\nPort: 465\n"
	  "Connection security: SSL/TLS\nAuthentication method: Normal password\n"
	  "User Name: alice@client.test\n",
	  NULL, "smtp.client.test", 465, TLS, NULL, 0, U, "alice@client.test", NULL, NULL },
	{ "thunderbird both servers",
	  "Server Settings\nServer Type: IMAP Mail Server\nServer Name: imap.client.test\n"
	  "Port: 993\nUser Name: alice\nConnection security: SSL/TLS\n"
	  "Authentication method: Normal password\n\n"
	  "Outgoing Server (SMTP)\nServer Name: smtp.client.test\nPort: 587\n"
	  "Connection security: STARTTLS\n",
	  NULL, "smtp.client.test", 587, STL, "imap.client.test", 993, TLS, "alice", NULL, NULL },
	{ "thunderbird none",
	  "Outgoing Server (SMTP)\nServer Name: mail.client.test\nPort: 25\n"
	  "Connection security: None\nAuthentication method: No authentication\n",
	  NULL, "mail.client.test", 25, NONE, NULL, 0, U, NULL, NULL, NULL },
	{ "outlook account settings",
	  "Account type: IMAP\nIncoming mail server: imap.client.test\n"
	  "Outgoing mail server (SMTP): smtp.client.test\nUser Name: bob@client.test\n"
	  "Password: ********\n",
	  NULL, "smtp.client.test", 0, U, "imap.client.test", 0, U, "bob@client.test", NULL, NULL },
	{ "outlook advanced tab",
	  "Incoming server (IMAP): 993\nUse the following type of encrypted connection: SSL/TLS\n"
	  "Outgoing server (SMTP): 587\nUse the following type of encrypted connection: STARTTLS\n",
	  NULL, NULL, 587, STL, NULL, 993, TLS, NULL, NULL, NULL },
	{ "outlook advanced none",
	  "Outgoing server (SMTP): 25\nUse the following type of encrypted connection: None\n",
	  NULL, NULL, 25, NONE, NULL, 0, U, NULL, NULL, NULL },
	{ "outlook error dialog",
	  "Sending reported error (0x800CCC0E) : 'Cannot connect to the server. Account: "
	  "'work', Server: 'smtp.client.test', Protocol: SMTP, Port: 25, Secure(SSL): No, "
	  "Socket Error: 10061, Error Number: 0x800CCC0E'\n",
	  NULL, "smtp.client.test", 25, NONE, NULL, 0, U, NULL, NULL, "connection refused" },
	{ "outlook timeout code",
	  "Outlook says 0x8004210B when I press send. My server is smtp.client.test.\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, "timed out" },
	{ "apple mail",
	  "Outgoing Mail Server (SMTP)\nHost Name: smtp.mail.me.com\nUser Name: john\n"
	  "Password: ••••••\nPort: 587\nUse TLS/SSL: on\nAuthentication: Password\n",
	  NULL, "smtp.mail.me.com", 587, TLS, NULL, 0, U, "john", NULL, NULL },
	{ "ru thunderbird",
	  "Сервер исходящей почты (SMTP)\nИмя сервера: smtp.firma.ru\nПорт: 465\n"
	  "Защита соединения: SSL/TLS\nИмя пользователя: ivan@firma.ru\n",
	  NULL, "smtp.firma.ru", 465, TLS, NULL, 0, U, "ivan@firma.ru", NULL, NULL },
	{ "de thunderbird keine",
	  "Postausgangs-Server (SMTP)\nServer: mail.beispiel.de\nPort: 25\n"
	  "Verbindungssicherheit: Keine\nBenutzername: max\n",
	  NULL, "mail.beispiel.de", 25, NONE, NULL, 0, U, "max", NULL, NULL },
	{ "uk settings",
	  "Налаштування сервера вихідної пошти:\nСервер: smtp.ukr.net\nПорт: 2525\n"
	  "Логін: petro@ukr.net\n",
	  NULL, "smtp.ukr.net", 2525, U, NULL, 0, U, "petro@ukr.net", NULL, NULL },

	/* ---- pasted server replies ---- */
	{ "reply 535 enhanced",
	  "When I send I get this:\n535 5.7.8 Error: authentication failed: authentication failure\n"
	  "I use smtp.client.test port 587.\n",
	  NULL, "smtp.client.test", 587, U, NULL, 0, U, NULL, "535 5.7.8", "authentication failed" },
	{ "reply 554 relay in a sentence",
	  "The server responded: 554 5.7.1 <x@other.test>: Relay access denied\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, "554 5.7.1", "relay denied" },
	{ "reply 530 starttls",
	  "Error: 530 5.7.0 Must issue a STARTTLS command first\nServer mail.client.test port 25\n",
	  NULL, "mail.client.test", 25, U, NULL, 0, U, NULL, "530 5.7.0", "starttls required" },
	{ "reply without enhanced code",
	  "I get\n550 Relay not permitted\nevery time.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, "550", "relay denied" },
	{ "reply multi-line 534",
	  "534-5.7.9 Application-specific password required. Learn more at\n"
	  "534 5.7.9 https://support.google.com/mail/?p=InvalidSecondFactor\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, "534 5.7.9", "authentication failed" },
	{ "reply office365 auth disabled",
	  "smtp.office365.com says: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
	  "is disabled for the Tenant.\n",
	  NULL, "smtp.office365.com", 0, U, NULL, 0, U, NULL, "535 5.7.139", "authentication failed" },
	{ "client error refused",
	  "Thunderbird: Sending of the message failed. Connection refused by mail.client.test\n",
	  NULL, "mail.client.test", 0, U, NULL, 0, U, NULL, NULL, "connection refused" },
	{ "client error timeout ru",
	  "Ошибка: превышено время ожидания соединения с сервером smtp.firma.ru\n",
	  NULL, "smtp.firma.ru", 0, U, NULL, 0, U, NULL, NULL, "timed out" },
	{ "client error certificate",
	  "It says the certificate for smtp.client.test is not valid. SSL handshake problem?\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, "certificate" },
	{ "ssl handshake is not a setting",
	  "SSL handshake failed with mail.client.test\n",
	  NULL, "mail.client.test", 0, U, NULL, 0, U, NULL, NULL, "tls handshake failed" },
	{ "550 customers is not a reply",
	  "We have 550 customers waiting. Please fix the outgoing mail!\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },

	/* ---- misleading text ---- */
	{ "email address is not a host",
	  "My address is alice@mail.client.test and I cannot send anything.\n",
	  "client.test", NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "url is not a host",
	  "I followed https://mail.client.test/help/smtp and https://www.provider.test/ but "
	  "my outgoing mail still fails.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "url labelled as the smtp server",
	  "SMTP server: https://smtp.client.test\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "version number and file name",
	  "Outlook version 16.0.17328.20124, see report.pdf and screenshot.PNG attached. "
	  "SMTP does not work.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "website in prose",
	  "Outgoing mail does not work, but our website example.com is fine.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "sentence without space",
	  "The smtp server is not working.Thanks for help\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "time and phone are not ports",
	  "Since 12:30 nothing is sent via smtp.client.test. Call me at +1 587 555 0199 "
	  "or 465-2525.\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "time after host",
	  "smtp.client.test 12:30 stopped working\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "tls version is not a mode",
	  "My outgoing server smtp.client.test supports TLS 1.2 only?\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "password line is never a user",
	  "Login/password: alice / s3cret\nSMTP: smtp.client.test\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "user:password pasted together",
	  "Login:alice:s3cret\nSMTP server smtp.client.test\n",
	  NULL, "smtp.client.test", 0, U, NULL, 0, U, "alice", NULL, NULL },
	{ "bare domain in smtp context",
	  "SMTP server: client.test port 2525\n",
	  NULL, "client.test", 2525, U, NULL, 0, U, NULL, NULL, NULL },
	{ "ip address as server",
	  "Outgoing server: 203.0.113.7, port 587\n",
	  NULL, "203.0.113.7", 587, U, NULL, 0, U, NULL, NULL, NULL },
	{ "pop host is not imap",
	  "Incoming: pop.client.test (POP3, port 995), outgoing: smtp.client.test port 465\n",
	  NULL, "smtp.client.test", 465, U, NULL, 0, U, NULL, NULL, NULL },
	{ "without ssl",
	  "I send through mail.client.test port 25 without SSL.\n",
	  NULL, "mail.client.test", 25, NONE, NULL, 0, U, NULL, NULL, NULL },
	{ "smtp.com two labels is a company",
	  "We moved from smtp.com to our own mail server last week; sending is broken.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },

	/* ---- quoted text ---- */
	{ "own text beats quoted staff reply",
	  "I tried, still nothing. My server is smtp.client.test port 587.\n\n"
	  "On Mon, 3 Jun 2024 Support <support@helpdesk.test> wrote:\n"
	  "> Please try smtp.helpdesk.test with port 465 and SSL.\n",
	  NULL, "smtp.client.test", 587, TLS, NULL, 0, U, NULL, NULL, NULL },
	{ "quoted only when own text has none",
	  "Still not working, see below.\n\n"
	  "-----Original Message-----\nFrom: Support\nSent: Monday\n"
	  "Your outgoing server smtp.client.test:2525 answered 535 5.7.8 Error: authentication failed\n",
	  NULL, "smtp.client.test", 2525, U, NULL, 0, U, NULL, "535 5.7.8", "authentication failed" },
	{ "ru quote attribution",
	  "Не работает. Сервер smtp.firma.ru порт 587\n\n"
	  "Пн, 3 июн. 2024 г. в 10:00, Поддержка <support@helpdesk.test>:\n"
	  "Иван Петров пишет:\n> попробуйте smtp.helpdesk.test порт 465\n",
	  NULL, "smtp.firma.ru", 587, U, NULL, 0, U, NULL, NULL, NULL },
	{ "signature host does not count",
	  "Outgoing mail is down.\n-- \nJohn Smith\nwww.client.test | mail.client.test\n",
	  NULL, "mail.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "sender domain breaks a tie",
	  "Servers: smtp.other.test and smtp.client.test\n",
	  "client.test", "smtp.client.test", 0, U, NULL, 0, U, NULL, NULL, NULL },
	{ "transcript lines are not settings",
	  "220 mx.client.test ESMTP Postfix\nEHLO me\n250-STARTTLS\nAUTH LOGIN\n"
	  "535 5.7.8 Error: authentication failed\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, "535 5.7.8", "authentication failed" },
	{ "two hosts on one line",
	  "imap.client.test:993 SSL, smtp.client.test:587 STARTTLS - sending fails\n",
	  NULL, "smtp.client.test", 587, STL, "imap.client.test", 993, TLS, NULL, NULL, NULL },
	{ "incoming and outgoing sentences",
	  "Incoming: mail.client.test port 993 SSL; outgoing: mail.client.test port 587 "
	  "STARTTLS.\n",
	  NULL, "mail.client.test", 587, STL, "mail.client.test", 993, TLS, NULL, NULL, NULL },
	{ "nothing at all",
	  "Hello, my mail is not being sent. Please call me.\n",
	  NULL, NULL, 0, U, NULL, 0, U, NULL, NULL, NULL },
};

static void
check_case(const struct tcase *c)
{
	struct mail_hints h;
	int before = t_failed, n;

	n = mail_hints_parse(c->text, strlen(c->text), c->domain, &h);
#define S(field, want) do {						\
	if ((want) == NULL) { T_CHECK(h.field == NULL); }		\
	else T_EQ_STR(h.field, (want));					\
} while (0)
	S(smtp_host, c->smtp_host);
	T_EQ_INT(h.smtp_port, c->smtp_port);
	T_EQ_INT(h.smtp_security, c->smtp_sec);
	S(imap_host, c->imap_host);
	T_EQ_INT(h.imap_port, c->imap_port);
	T_EQ_INT(h.imap_security, c->imap_sec);
	S(user, c->user);
	S(reply_code, c->code);
	S(error_hint, c->hint);
#undef S
	T_CHECK(n == (h.smtp_host != NULL) + (h.smtp_port != 0) + (h.smtp_security >= 0) +
	    (h.imap_host != NULL) + (h.imap_port != 0) + (h.imap_security >= 0) +
	    (h.user != NULL) + (h.reply_code != NULL) + (h.error_hint != NULL));
	if (t_failed != before)
		fprintf(stderr, "  ^ in case \"%s\"\n", c->name);
	mail_hints_free(&h);
}

/* reply_text: the line from the code, sanitised and capped. */
static void
test_reply_text(void)
{
	struct mail_hints h;
	char big[600];
	const char *t = "Error was: 535 5.7.8 Error: authentication failed \xc3\xa9\x01 now\r\n";

	mail_hints_parse(t, strlen(t), NULL, &h);
	T_EQ_STR(h.reply_text, "535 5.7.8 Error: authentication failed ?  now");
	mail_hints_free(&h);
	T_CHECK(h.reply_text == NULL && h.smtp_security == -1);

	memset(big, 'x', sizeof(big));
	memcpy(big, "554 5.7.1 ", 10);
	big[sizeof(big) - 1] = '\0';
	mail_hints_parse(big, strlen(big), NULL, &h);
	T_EQ_STR(h.reply_code, "554 5.7.1");
	T_CHECK(h.reply_text && strlen(h.reply_text) == MAILHINTS_REPLY_MAX);
	mail_hints_free(&h);
}

/* Edge inputs: NULL, empty, NUL bytes, the input cap, a huge line. */
static void
test_edges(void)
{
	struct mail_hints h;
	size_t n = 200 * 1024, i, off;
	char *big = malloc(n), *p;
	const char nul[] = "SMTP: smtp.a.test\0port 465\nPort: 587\n";

	T_EQ_INT(mail_hints_parse(NULL, 0, NULL, &h), 0);
	T_CHECK(h.smtp_host == NULL && h.smtp_security == -1 && h.imap_security == -1);
	mail_hints_free(&h);
	T_EQ_INT(mail_hints_parse("", 0, "x.test", &h), 0);
	mail_hints_free(&h);
	mail_hints_free(NULL);

	/* NUL bytes are ordinary bytes: the text goes on after them. */
	mail_hints_parse(nul, sizeof(nul) - 1, NULL, &h);
	T_EQ_STR(h.smtp_host, "smtp.a.test");
	T_EQ_INT(h.smtp_port, 465);
	mail_hints_free(&h);

	/* Past MAILHINTS_INPUT_MAX nothing is read. */
	memset(big, ' ', n);
	p = "Outgoing server: smtp.late.test port 2525\n";
	memcpy(big + MAILHINTS_INPUT_MAX + 10, p, strlen(p));
	mail_hints_parse(big, n, NULL, &h);
	T_CHECK(h.smtp_host == NULL);
	mail_hints_free(&h);
	memcpy(big + 100, p, strlen(p));
	mail_hints_parse(big, n, NULL, &h);
	T_EQ_STR(h.smtp_host, "smtp.late.test");
	T_EQ_INT(h.smtp_port, 2525);
	mail_hints_free(&h);

	/* Many host names, keywords and replies: bounded tables, no failure. */
	for (i = 0, off = 0; off + 64 < MAILHINTS_INPUT_MAX; i++)
		off += (size_t)snprintf(big + off, 64, "smtp.h%zu.test:587 SSL 535 5.7.8 x port 25\n", i);
	mail_hints_parse(big, MAILHINTS_INPUT_MAX, NULL, &h);
	T_EQ_STR(h.smtp_host, "smtp.h0.test");
	T_EQ_INT(h.smtp_port, 587);
	T_EQ_INT(h.smtp_security, TLS);
	mail_hints_free(&h);
	free(big);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	printf("%zu messages\n", sizeof(cases) / sizeof(cases[0]));
	test_reply_text();
	test_edges();
	return t_done();
}
