/*
 * test_classify - the support rubric, machine detection, languages,
 * categories, quoting, the keyword-file format and the reasons string.
 *
 * Run from the repository root: the shipped rules come from conf/keywords.
 * Most of it tests the keyword rules alone (CLASSIFY_RULES_ONLY), whose
 * rubric is written down; test_learned() tests the shipped classifier,
 * rules and learned part (triage.model) together, on clear-cut mail.
 * Messages are built by hand as struct msg (headers through the real
 * msg_header()), so these tests do not depend on MIME parsing.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"
#include "t.h"

static struct classify_rules *rules;

/* ------------------------------------------------------------------ */
/* Building messages                                                   */

struct tmsg {
	struct msg		m;
	struct msg_header	h[8];
};

static void
tmsg_init(struct tmsg *t, const char *subject, const char *text)
{
	memset(t, 0, sizeof(*t));
	t->m.headers = t->h;
	t->m.subject = (char *)subject;
	t->m.text = (char *)text;
	t->m.text_len = strlen(text);
	t->m.from_address = (char *)"client@example.org";
	t->m.from_name = (char *)"Client";
	t->m.message_id = (char *)"";
	t->m.in_reply_to = (char *)"";
	t->m.content_type = (char *)"text/plain";
}

static void
tmsg_header(struct tmsg *t, const char *name, const char *value)
{
	struct msg_header *h = &t->h[t->m.header_count++];

	h->name = (char *)name;
	h->raw = (char *)value;
	h->value = (char *)value;
}

static struct classify_result
classify_full(const struct classify_rules *r, struct tmsg *t, const char *envelope)
{
	struct classify_result res;

	classify_message(r, &t->m, envelope, &res);
	return res;
}

static struct classify_result
classify_text(const char *subject, const char *text)
{
	struct tmsg t;

	tmsg_init(&t, subject, text);
	return classify_full(rules, &t, "client@example.org");
}

/* Content urgency of subject + text, with the evidence printed when the
 * check fails. */
#define EXPECT_P(want, subject, text) do {				\
	struct classify_result e_r = classify_text((subject), (text));	\
	const char *e_got = classify_urgency_name(e_r.content_urgency);	\
	T_EQ_STR(e_got, (want));					\
	if (strcmp(e_got, (want)) != 0)					\
		fprintf(stderr, "  subject: %s\n  text: %s\n  reasons: %s\n", \
		    (subject), (text), e_r.reasons);			\
} while (0)

#define EXPECT_CAT(want, subject, text) do {				\
	struct classify_result e_r = classify_text((subject), (text));	\
	T_EQ_STR(e_r.category, (want));					\
	if (strcmp(e_r.category, (want)) != 0)				\
		fprintf(stderr, "  text: %s\n  reasons: %s\n", (text), e_r.reasons); \
} while (0)

#define EXPECT_LANG(want, subject, text) do {				\
	struct classify_result e_r = classify_text((subject), (text));	\
	T_EQ_STR(e_r.lang, (want));					\
	if (strcmp(e_r.lang, (want)) != 0)				\
		fprintf(stderr, "  text: %s\n", (text));		\
} while (0)

/* ------------------------------------------------------------------ */
/* Rules written for a test                                            */

static char tmpdir[64];

static void
write_file(const char *dir, const char *name, const char *content)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	fputs(content, fp);
	fclose(fp);
}

static void
clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

/* Loads rules from one file with the given content (errors into *errors). */
static struct classify_rules *
load_one(const char *content, struct buf *errors)
{
	clear_dir(tmpdir);
	write_file(tmpdir, "test.kw", content);
	buf_reset(errors);
	return classify_rules_load(tmpdir, errors);
}

/* ------------------------------------------------------------------ */

static void
test_load(void)
{
	struct buf errors;
	struct classify_rules *r;
	char missing[128];

	buf_init(&errors, 64 * 1024);
	T_CHECK(rules != NULL);

	r = load_one("outage 2 down\nbogus 2 thing\nimpact x urgent\nimpact 11 urgent\n"
	    "impact 2\nimpact 2 *\nhowto 2 how * do\nthreshold impact 0\nthreshold nope 2\n"
	    "category:Bad 2 x\nlang:EN 1 the\nacronym TWO WORDS\nquote-separator\n"
	    "# a comment\n\n   \noutage 2 ok phrase\nimpact\n", &errors);
	T_CHECK(r == NULL);
	T_CONTAINS(buf_str(&errors), "test.kw:2: unknown class 'bogus'");
	T_CONTAINS(buf_str(&errors), "test.kw:3: bad weight 'x'");
	T_CONTAINS(buf_str(&errors), "test.kw:4: bad weight '11'");
	T_CONTAINS(buf_str(&errors), "test.kw:5: empty phrase");
	T_CONTAINS(buf_str(&errors), "test.kw:6: empty phrase");
	T_CONTAINS(buf_str(&errors), "test.kw:7: '*' is only allowed at the end");
	T_CONTAINS(buf_str(&errors), "test.kw:8: bad threshold '0'");
	T_CONTAINS(buf_str(&errors), "test.kw:9: unknown class 'nope'");
	T_CONTAINS(buf_str(&errors), "test.kw:10: unknown class 'category:Bad'");
	T_CONTAINS(buf_str(&errors), "test.kw:11: unknown class 'lang:EN'");
	T_CONTAINS(buf_str(&errors), "test.kw:12: usage: acronym WORD");
	T_CONTAINS(buf_str(&errors), "test.kw:13: empty quote-separator");
	T_CHECK(strstr(buf_str(&errors), "test.kw:1:") == NULL);
	T_CHECK(strstr(buf_str(&errors), "test.kw:14:") == NULL);
	T_CHECK(strstr(buf_str(&errors), "test.kw:17:") == NULL);
	T_CONTAINS(buf_str(&errors), "test.kw:18: missing weight");

	/* the same phrase and class twice: same weight is fine, else an error */
	r = load_one("impact 2 urgent\nimpact 2 URGENT\n", &errors);
	T_CHECK(r != NULL);
	classify_rules_free(r);
	r = load_one("impact 2 urgent\nimpact 3 Urgent\n", &errors);
	T_CHECK(r == NULL);
	T_CONTAINS(buf_str(&errors), "test.kw:2: \"urgent\" for impact has weight 3 here but 2 at");

	/* every file is read, in name order; an error names its file */
	clear_dir(tmpdir);
	write_file(tmpdir, "a.kw", "outage 2 down\n");
	write_file(tmpdir, "b.kw", "outage 2 fine\noutage two broken\n");
	write_file(tmpdir, "c.txt", "not a keyword file\n");
	buf_reset(&errors);
	r = classify_rules_load(tmpdir, &errors);
	T_CHECK(r == NULL);
	T_CONTAINS(buf_str(&errors), "/b.kw:2: bad weight 'two'");
	T_CHECK(strstr(buf_str(&errors), "a.kw") == NULL);

	/* an empty or missing directory is an error */
	clear_dir(tmpdir);
	buf_reset(&errors);
	T_CHECK(classify_rules_load(tmpdir, &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "no *.kw files");
	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	buf_reset(&errors);
	T_CHECK(classify_rules_load(missing, &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "cannot open keyword directory");
	/* comments only: no phrases */
	write_file(tmpdir, "x.kw", "# nothing\n");
	buf_reset(&errors);
	T_CHECK(classify_rules_load(tmpdir, &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "no phrases");
	T_CHECK(classify_rules_load(tmpdir, NULL) == NULL);	/* errors may be NULL */

	classify_rules_free(NULL);
	buf_free(&errors);
}

/* The matcher itself, on rules written for the test. */
static void
test_matching(void)
{
	struct buf errors;
	struct classify_rules *r;
	struct tmsg t;
	struct classify_result res;

	buf_init(&errors, 64 * 1024);
	r = load_one(
	    "outage 2 down\n"
	    "outage 2 отправ*\n"
	    "impact 2 send*\n"
	    "defect 2 send\n"
	    "howto 2 cannot send mail\n"
	    "security 2 não consigo\n"
	    "workaround 2 straße\n"
	    "category:a 2 can't\n"
	    "category:b 2 еще раз\n"
	    "threshold category:c 3\n"
	    "category:c 2 three\n"
	    "category:d 2 ABC\n"
	    "category:d 2 DEF\n"
	    "category:e 2 abc\n"
	    "category:e 2 def\n", &errors);
	T_CHECK(r != NULL);
	if (r == NULL) {
		fprintf(stderr, "%s", buf_str(&errors));
		buf_free(&errors);
		return;
	}

	/* word boundaries: "download" is not "down", "countdown" neither */
	tmsg_init(&t, "", "I cannot download the file, the countdown is odd");
	res = classify_full(r, &t, "a@b");
	T_CHECK(strstr(res.reasons, "state broken") == NULL);
	tmsg_init(&t, "", "the server is down.");
	res = classify_full(r, &t, "a@b");
	T_CONTAINS(res.reasons, "state broken: \"down\"");
	tmsg_init(&t, "", "DOWN");
	res = classify_full(r, &t, "a@b");
	T_EQ_INT(res.content_urgency, 2);
	tmsg_init(&t, "", "down");		/* at the very start and end */
	res = classify_full(r, &t, "a@b");
	T_EQ_INT(res.content_urgency, 2);
	tmsg_init(&t, "", "touchdown2down_x");
	res = classify_full(r, &t, "a@b");
	T_CHECK(strstr(res.reasons, "state broken") == NULL);

	/* stems match word starts only; a phrase without '*' must end at a word end */
	tmsg_init(&t, "", "письма не отправляются");
	res = classify_full(r, &t, "a@b");
	T_CONTAINS(res.reasons, "state broken: \"отправляются\"");	/* shown as the whole word */
	tmsg_init(&t, "", "переотправлять");
	res = classify_full(r, &t, "a@b");
	T_CHECK(strstr(res.reasons, "state broken") == NULL);
	tmsg_init(&t, "", "the sender");
	res = classify_full(r, &t, "a@b");
	T_CHECK(strstr(res.reasons, "impact") != NULL);	/* send* */
	T_CHECK(strstr(res.reasons, "state faulty") == NULL);	/* send */

	/* case folding, blanks and line breaks inside a phrase, apostrophes */
	tmsg_init(&t, "", "We CANNOT\r\n   Send\tMAIL today");
	res = classify_full(r, &t, "a@b");
	T_CONTAINS(res.reasons, "state question: \"CANNOT Send MAIL\"");
	tmsg_init(&t, "", "I can\xe2\x80\x99t");	/* can’t */
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "a");
	tmsg_init(&t, "", "ЕЩЁ РАЗ");		/* ё matches е */
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "b");
	/* diacritics: the phrase without them matches too; ß is ss */
	tmsg_init(&t, "", "nao consigo");
	res = classify_full(r, &t, "a@b");
	T_EQ_INT(res.content_urgency, 1);
	tmsg_init(&t, "", "NÃO CONSIGO");
	res = classify_full(r, &t, "a@b");
	T_EQ_INT(res.content_urgency, 1);
	tmsg_init(&t, "", "Strasse");
	res = classify_full(r, &t, "a@b");
	T_CONTAINS(res.reasons, "workaround");

	/* thresholds; a phrase counts once however often it repeats; the
	 * subject counts double */
	tmsg_init(&t, "", "three");
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "other");
	tmsg_init(&t, "", "three three three three");
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "other");
	tmsg_init(&t, "three", "");
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "c");
	tmsg_init(&t, "three", "three");
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "c");
	/* ties go to the category mentioned first */
	tmsg_init(&t, "", "abc def");
	res = classify_full(r, &t, "a@b");
	T_EQ_STR(res.category, "d");

	classify_rules_free(r);
	buf_free(&errors);
}

static void
test_rubric_en(void)
{
	/* P1: outage with urgency or impact */
	EXPECT_P("P1", "URGENT: cannot send email",
	    "Hi, none of our staff can send emails since 9am. Please fix ASAP.");
	EXPECT_P("P1", "Email down",
	    "Our email is down and we are losing customers. This is critical.");
	EXPECT_P("P1", "", "Since this morning nobody in the office can send anything, every message "
	    "sits in the outbox. We are losing orders - please help immediately.");
	EXPECT_P("P1", "Mail server unreachable",
	    "Your mail server is unreachable from all our offices. Emergency!");
	EXPECT_P("P1", "", "emails are not going out, it's urgent, our whole company is affected");
	/* P1: security and data loss, whatever the wording */
	EXPECT_P("P1", "Account hacked?",
	    "I think my account has been hacked - people are getting spam sent from my address.");
	EXPECT_P("P1", "", "All my emails have disappeared from the inbox overnight. Where did they go?");
	EXPECT_P("P1", "", "Someone logged into my account from Brazil and changed the forwarding.");
	/* P2: outage without such wording */
	EXPECT_P("P2", "Can't send", "Hello, I can't send any emails from Outlook since yesterday.");
	EXPECT_P("P2", "", "Emails are stuck in the outbox and never go out. Could you take a look?");
	EXPECT_P("P2", "", "Outlook says: 554 5.7.1 Relay access denied. What does it mean?");
	EXPECT_P("P2", "", "We have stopped receiving emails since Friday, nothing is coming in.");
	EXPECT_P("P2", "SMTP", "Every time I try to send I get 535 Authentication failed.");
	EXPECT_P("P2", "", "webmail is not working at all, it just shows 502 Bad Gateway");
	/* P3: an ordinary defect, or one with a workaround */
	EXPECT_P("P3", "Attachment error",
	    "When I open a PDF attachment in webmail I get an error message.");
	EXPECT_P("P3", "", "The calendar sync is broken on my iPhone, it shows events twice.");
	EXPECT_P("P3", "Can't send from Outlook",
	    "I can't send from Outlook, but webmail works, so we use webmail for now.");
	EXPECT_P("P3", "", "Search in webmail is very slow and sometimes times out.");
	/* P4: how-to, requests, thanks, information */
	EXPECT_P("P4", "Question", "How do I set up my new iPhone to read mail over IMAP?");
	EXPECT_P("P4", "", "Thank you, everything works now!");
	EXPECT_P("P4", "Feature request", "It would be great if webmail had a dark mode.");
	EXPECT_P("P4", "", "Just to let you know, we will move to a new office next month.");
	EXPECT_P("P4", "", "Is it possible to add an alias to my mailbox?");
}

static void
test_rubric_ru(void)
{
	EXPECT_P("P1", "Срочно!", "Письма не уходят с самого утра, теряем клиентов!");
	EXPECT_P("P1", "", "Здравствуйте. Не могу отправить ни одного письма, это критично для нас, "
	    "у нас стоит вся работа.");
	EXPECT_P("P1", "", "Почта не работает вообще, весь офис сидит без почты, помогите немедленно");
	EXPECT_P("P1", "", "Нас взломали: с нашего ящика рассылается спам.");
	EXPECT_P("P1", "", "Пропали все письма из папки Входящие, там было всё за три года.");
	EXPECT_P("P2", "", "Добрый день! Не отправляется почта, письма зависли в исходящих.");
	EXPECT_P("P2", "Ошибка", "При отправке письма выдаёт ошибку 535 authentication failed.");
	EXPECT_P("P2", "", "Уже второй день не приходят письма от клиентов.");
	EXPECT_P("P2", "", "Не могу отправить письмо, ошибка при отправке. Не срочно, но посмотрите.");
	EXPECT_P("P3", "", "В веб-интерфейсе не открываются вложения, выдаёт ошибку.");
	EXPECT_P("P3", "", "Из Outlook письма не уходят, но через веб-интерфейс работает, "
	    "пока пользуемся им.");
	EXPECT_P("P3", "", "Календарь показывает неправильное время встреч, какой-то глюк.");
	EXPECT_P("P4", "", "Подскажите, пожалуйста, как настроить почту на iPhone?");
	EXPECT_P("P4", "", "Спасибо большое, всё заработало!");
	EXPECT_P("P4", "", "Было бы удобно, если бы в веб-почте была тёмная тема. Предлагаю добавить.");
}

static void
test_rubric_uk(void)
{
	EXPECT_P("P1", "", "Терміново! Листи не відправляються вже дві години, втрачаємо клієнтів.");
	EXPECT_P("P1", "", "Пошта не працює взагалі, весь офіс без пошти, це критично.");
	EXPECT_P("P1", "", "Нашу скриньку зламали і з неї розсилається спам.");
	EXPECT_P("P1", "", "Зникли всі листи з вхідних!");
	EXPECT_P("P2", "", "Добрий день. Не можу надіслати жодного листа, вискакує помилка.");
	EXPECT_P("P2", "", "Листи від клієнтів не надходять з учорашнього дня.");
	EXPECT_P("P2", "", "Не відправляється пошта з Outlook. Не терміново, але подивіться.");
	EXPECT_P("P3", "", "Не відкриваються вкладення у веб-інтерфейсі, пише помилку.");
	EXPECT_P("P3", "", "З Outlook листи не відправляються, але з телефону все працює, "
	    "поки користуємось телефоном.");
	EXPECT_P("P4", "", "Підкажіть, будь ласка, як налаштувати пошту на телефоні?");
	EXPECT_P("P4", "", "Дякую, все запрацювало!");
}

/* More ways real people put it: { expected content urgency, text }. */
static void
test_phrasings(void)
{
	static const char *const cases[][2] = {
		{ "P2", "my emails keep bouncing back with \"mailbox unavailable\"" },
		{ "P2", "Outlook keeps asking for my password and nothing sends" },
		{ "P2", "Since the update, messages just sit in my Outbox" },
		{ "P2", "No emails have come in since 10am" },
		{ "P2", "Our mail server rejects every message I send with 554" },
		{ "P2", "Thunderbird: Sending of the message failed." },
		{ "P2", "I can not send mails, it says connection to SMTP server failed" },
		{ "P2", "Mail isn't being delivered to any of our recipients" },
		{ "P2", "hi, mail is not going anywhere since the morning" },
		{ "P2", "Emails I send just disappear, nobody gets them" },
		{ "P2", "outgoing mail stopped working" },
		{ "P1", "URGENT - entire office cannot receive email!" },
		{ "P1", "Our website and email are both down, we are losing sales by the minute" },
		{ "P1", "We cannot send invoices to customers, this is critical for our business" },
		{ "P1", "Mail completely dead. Losing clients. HELP" },
		{ "P3", "One email to a customer bounced back" },
		{ "P3", "Some emails from one sender end up in spam, wrong folder" },
		{ "P4", "Can you tell me the IMAP server settings?" },
		{ "P4", "Where can I find my invoice for October?" },
		{ "P4", "Thanks for fixing it so quickly!" },
		{ "P2", "Не приходит почта на ящик sales@, не приходят письма" },
		{ "P2", "Почта не отправляется уже 2 часа" },
		{ "P2", "Письма не доходят до получателей, возвращаются с ошибкой" },
		{ "P2", "Не получается отправить письмо, пишет ошибка сервера" },
		{ "P2", "У меня не отправляются письма из Outlook" },
		{ "P2", "Перестала приходить почта со вчерашнего дня" },
		{ "P2", "Письма уходят, но никто их не получает" },
		{ "P2", "Исходящая почта не работает" },
		{ "P1", "СРОЧНО!!! Не работает почта во всей компании" },
		{ "P1", "Почта не работает, клиенты не могут с нами связаться, срочно" },
		{ "P3", "Одно письмо вернулось с ошибкой" },
		{ "P4", "Как поменять пароль от почты?" },
		{ "P4", "Подскажите настройки SMTP для Outlook" },
		{ "P4", "Спасибо, всё работает" },
		{ "P2", "Не відправляються листи, пише помилку" },
		{ "P2", "Пошта не приходить другий день, листи не приходять" },
		{ "P2", "Не можу відправити лист з Outlook" },
		{ "P2", "Листи повертаються назад з помилкою" },
		{ "P2", "Листи йдуть, але ніхто їх не отримує" },
		{ "P2", "Вхідна пошта не працює" },
		{ "P1", "Терміново! Не працює пошта в усьому офісі" },
		{ "P4", "Як змінити пароль до пошти?" },
		{ "P4", "Підкажіть налаштування SMTP для Outlook" },
		{ "P4", "Дякую, все працює" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		EXPECT_P(cases[i][0], "", cases[i][1]);
}

static void
test_other_languages(void)
{
	EXPECT_P("P1", "", "Hallo, wir können keine E-Mails senden, es ist dringend!");
	EXPECT_P("P2", "", "Bonjour, je n'arrive pas à envoyer mes mails depuis ce matin.");
	EXPECT_P("P2", "", "Hola, no puedo enviar correos desde ayer.");
	EXPECT_P("P1", "", "Dzień dobry, nie mogę wysłać żadnej wiadomości, to pilne!");
	EXPECT_P("P2", "", "Buongiorno, non riesco a inviare email da stamattina.");
	EXPECT_P("P1", "", "Olá, minha conta foi invadida e está enviando spam.");
	EXPECT_P("P4", "", "Vielen Dank, es funktioniert jetzt!");
}

static void
test_shouting(void)
{
	/* capitals and "!!!" stand for impact */
	EXPECT_P("P1", "", "EMAILS ARE NOT GOING OUT, FIX IT NOW");
	EXPECT_P("P1", "", "Emails are not going out!!!");
	EXPECT_P("P1", "", "Emails are not going out!! WHY");
	EXPECT_P("P1", "CANNOT SEND EMAILS", "Hello, see subject.");
	EXPECT_P("P1", "", "ПИСЬМА НЕ УХОДЯТ, СДЕЛАЙТЕ ЧТО-НИБУДЬ");
	EXPECT_P("P1", "", "Листи не відправляються!!!");
	/* not shouting: acronyms, a pasted server reply, a single word */
	EXPECT_P("P2", "", "Emails are not going out over SMTP, IMAP and DNS look fine, SPF OK.");
	EXPECT_P("P2", "", "Emails are not going out. The log says:\n"
	    "550 5.7.1 RELAY ACCESS DENIED FOR RECIPIENT\n");
	EXPECT_P("P2", "", "Emails are NOT going out.");
	EXPECT_P("P2", "", "Emails are not going out!");
	/* three capital words too far apart */
	EXPECT_P("P2", "", "MONDAY we noticed that emails are not going out. We checked the settings "
	    "in Outlook and everything looks the same as before, nothing was changed by anybody. "
	    "TUESDAY it was the same and WEDNESDAY too.");
	/* shouting without an outage is not P1 */
	EXPECT_P("P4", "", "HOW DO I CHANGE MY SIGNATURE");
	/* each line and word is read once (not once per capital word): the
	 * answer for a line holds for every word on it, and runs of capitals
	 * inside one word make no shouted word */
	EXPECT_P("P2", "", "Emails are not going out: 550 5.7.1 RELAY ACCESS DENIED FOR "
	    "RECIPIENT, USER UNKNOWN, MAILBOX FULL, TRY AGAIN");
	EXPECT_P("P1", "", "Emails are not going out: 550 5.7.1 RELAY ACCESS DENIED\n"
	    "FIX THIS NOW PLEASE");
	EXPECT_P("P2", "", "Emails are not going out. My password is ABCdEFGhIJKlMNOpQRStUVW "
	    "and XYZaBCDe.");
	{
		struct buf line;
		struct classify_result r;

		buf_init(&line, 64 * 1024);
		buf_append_str(&line, "Emails are not going out. ");
		for (int i = 0; i < 5000; i++)
			buf_append_str(&line, "WORD ");
		r = classify_text("", buf_str(&line));
		T_EQ_STR(classify_urgency_name(r.content_urgency), "P1");
		T_CONTAINS(r.reasons, "CAPITALS");
		buf_free(&line);
	}
}

static void
test_quoting(void)
{
	struct classify_result r;

	/* urgency in quoted text does not count */
	EXPECT_P("P2", "Re: mail", "Emails are stuck in the outbox again.\n\n"
	    "On Mon, 23 Nov 2026, Ann wrote:\n> URGENT!!! we are losing customers\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox again.\n> URGENT, critical, ASAP\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox again.\n\n-----Original Message-----\n"
	    "From: Ann\nSent: Monday\n\nURGENT!!! critical, we are losing customers\n");
	EXPECT_P("P2", "", "Письма зависли в исходящих.\n\nИван пишет:\nСРОЧНО!!! теряем клиентов\n");
	EXPECT_P("P2", "", "Листи не відправляються.\n\nІван пише:\nТЕРМІНОВО!!! втрачаємо клієнтів\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n\n________________________________\n"
	    "From: Support <support@example.com>\nSent: Monday, November 23, 2026 10:00\n"
	    "URGENT critical emergency\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n\nFrom: Ann <ann@example.org>\n"
	    "Sent: Monday, November 23, 2026 10:00\nTo: support\n\nURGENT critical emergency\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n\nAm 23.11.2026 schrieb Ann:\n"
	    "Dringend, kritisch!!!\n");
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n\nLe lun. 23 nov. 2026, Ann a écrit :\n"
	    "URGENT!!! critique\n");
	/* Gmail puts the name after the verb, or no verb at all */
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n\nAm Mo., 23. Nov. 2026 um 10:00 Uhr "
	    "schrieb Ann Schmidt <ann@example.de>:\nDringend, kritisch!!!\n");
	EXPECT_P("P2", "", "Письма зависли в исходящих.\n\nпн, 23 нояб. 2026 г. в 10:00, "
	    "Иван Петров <ivan@example.ru>:\nСРОЧНО!!! теряем клиентов\n");
	/* a line that merely ends in a colon is not an attribution */
	EXPECT_P("P1", "", "Emails are stuck in the outbox and the log says:\n"
	    "urgent: we are losing customers\n");
	/* an outage that only the quote mentions is not the client's */
	EXPECT_P("P4", "Re: question", "Thanks, that answers my question.\n\n"
	    "On Mon, 23 Nov 2026, Support wrote:\n> Emails are not going out for all customers.\n");
	/* the client may answer below the quote */
	EXPECT_P("P1", "", "On Mon, 23 Nov 2026, Support wrote:\n> Is it still happening?\n\n"
	    "Yes, emails are still not going out, and it is urgent now.\n");
	/* a signature is not scored */
	EXPECT_P("P2", "", "Emails are stuck in the outbox.\n-- \nACME CORP - URGENT DELIVERIES\n");

	r = classify_text("", "Emails are stuck in the outbox.\n> URGENT\n");
	T_CONTAINS(r.reasons, "quoted text ignored");
	r = classify_text("", "Emails are stuck in the outbox.\n");
	T_CHECK(strstr(r.reasons, "quoted") == NULL);
}

static void
test_negation(void)
{
	struct classify_result r;

	EXPECT_P("P2", "", "Emails are not going out. Not urgent, look when you can.");
	EXPECT_P("P2", "", "Emails are not going out, no rush though.");
	EXPECT_P("P2", "", "Письма не уходят, но это не срочно.");
	EXPECT_P("P2", "", "Листи не відправляються, але це не терміново.");
	EXPECT_P("P1", "URGENT", "Emails are not going out. The other thing I mentioned is not urgent.");
	r = classify_text("", "Emails are not going out. Not urgent.");
	T_CONTAINS(r.reasons, "negated: \"Not urgent\"");
}

static void
test_adjust(void)
{
	struct classify_result r, again;
	struct tmsg t;

	/* each raise is one level */
	r = classify_text("", "How do I change my signature?");
	T_EQ_INT(r.content_urgency, 4);
	T_EQ_INT(r.urgency, 4);			/* until classify_adjust */
	classify_adjust(&r, "standard", 0, 1);
	T_EQ_INT(r.urgency, 4);
	classify_adjust(&r, "trial", 0, 1);
	T_EQ_INT(r.urgency, 3);
	T_CONTAINS(r.reasons, "tier trial +1");
	classify_adjust(&r, "standard", 1, 1);
	T_EQ_INT(r.urgency, 3);
	T_CONTAINS(r.reasons, "incident watch +1");
	T_CHECK(strstr(r.reasons, "tier trial") == NULL);	/* replaced, not appended */
	classify_adjust(&r, NULL, 0, 2);
	T_EQ_INT(r.urgency, 4);
	classify_adjust(&r, NULL, 0, 3);
	T_EQ_INT(r.urgency, 3);
	T_CONTAINS(r.reasons, "3rd message in 24h +1");
	classify_adjust(&r, NULL, 0, 11);
	T_CONTAINS(r.reasons, "11th message in 24h +1");
	classify_adjust(&r, NULL, 0, 22);
	T_CONTAINS(r.reasons, "22nd message in 24h +1");
	classify_adjust(&r, "Trial", 1, 5);
	T_EQ_INT(r.urgency, 1);
	again = r;
	classify_adjust(&again, "Trial", 1, 5);		/* idempotent */
	T_EQ_STR(again.reasons, r.reasons);
	T_EQ_INT(again.urgency, 1);

	/* never above P1 */
	r = classify_text("", "Emails are not going out, urgent!");
	T_EQ_INT(r.content_urgency, 1);
	classify_adjust(&r, "trial", 1, 3);
	T_EQ_INT(r.urgency, 1);
	T_CONTAINS(r.reasons, "capped at P1");

	/* header priority */
	static const char *const hp[][2] = {
		{ "X-Priority", "1 (Highest)" }, { "X-Priority", "2" },
		{ "Importance", "High" }, { "Priority", "urgent" },
		{ "X-MSMail-Priority", "High" },
	};
	for (size_t i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
		tmsg_init(&t, "", "The settings page shows an error when I save my signature.");
		tmsg_header(&t, hp[i][0], hp[i][1]);
		r = classify_full(rules, &t, "client@example.org");
		T_EQ_INT(r.header_priority, 1);
		classify_adjust(&r, "standard", 0, 1);
		T_EQ_INT(r.urgency, 2);
		T_CONTAINS(r.reasons, "header priority +1");
		/* ... but it never lifts a question: what is P4 by content
		 * (how-to, prices) stays P4 whatever the sender's flag says */
		tmsg_init(&t, "", "How do I change my signature?");
		tmsg_header(&t, hp[i][0], hp[i][1]);
		r = classify_full(rules, &t, "client@example.org");
		classify_adjust(&r, "standard", 0, 1);
		T_EQ_INT(r.urgency, 4);
		T_CHECK(strstr(r.reasons, "header priority") == NULL);
	}
	static const char *const nohp[][2] = {
		{ "X-Priority", "3 (Normal)" }, { "X-Priority", "5" }, { "Importance", "normal" },
		{ "Priority", "non-urgent" }, { "X-MSMail-Priority", "Normal" }, { "X-Priority", "12" },
	};
	for (size_t i = 0; i < sizeof(nohp) / sizeof(nohp[0]); i++) {
		tmsg_init(&t, "", "How do I change my signature?");
		tmsg_header(&t, nohp[i][0], nohp[i][1]);
		r = classify_full(rules, &t, "client@example.org");
		T_EQ_INT(r.header_priority, 0);
	}

	/* all four at once from P3: P1 at most */
	tmsg_init(&t, "", "The settings page shows an error when I save my signature.");
	tmsg_header(&t, "Importance", "high");
	r = classify_full(rules, &t, "client@example.org");
	classify_adjust(&r, "trial", 1, 4);
	T_EQ_INT(r.urgency, 1);
	T_CONTAINS(r.reasons, "header priority +1; tier trial +1; incident watch +1; "
	    "4th message in 24h +1");

	/* machine mail is never raised */
	tmsg_init(&t, "Out of office", "I am away. Emails are not going out, urgent!");
	tmsg_header(&t, "Auto-Submitted", "auto-replied");
	tmsg_header(&t, "X-Priority", "1");
	r = classify_full(rules, &t, "client@example.org");
	classify_adjust(&r, "trial", 1, 9);
	T_EQ_INT(r.urgency, 4);
	T_EQ_INT(r.content_urgency, 4);

	T_EQ_STR(classify_urgency_name(1), "P1");
	T_EQ_STR(classify_urgency_name(2), "P2");
	T_EQ_STR(classify_urgency_name(3), "P3");
	T_EQ_STR(classify_urgency_name(4), "P4");
	T_EQ_STR(classify_urgency_name(0), "P3");
	T_EQ_STR(classify_urgency_name(7), "P3");
}

static const char *
auto_of(const char *h1, const char *v1, const char *h2, const char *v2, const char *envelope,
    const char *from, unsigned flags, const char *ctype)
{
	static struct classify_result r;
	struct tmsg t;

	tmsg_init(&t, "Hello", "Emails are not going out, urgent!");
	if (h1)
		tmsg_header(&t, h1, v1);
	if (h2)
		tmsg_header(&t, h2, v2);
	if (from)
		t.m.from_address = (char *)from;
	t.m.flags = flags;
	if (ctype)
		t.m.content_type = (char *)ctype;
	r = classify_full(rules, &t, envelope);
	if (r.auto_reason[0]) {
		T_EQ_INT(r.content_urgency, 4);		/* never pages anyone */
		T_CONTAINS(r.reasons, "machine-generated");
	}
	return r.auto_reason;
}

static void
test_auto(void)
{
	const char *env = "client@example.org";

	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, NULL, 0, NULL), "");
	T_EQ_STR(auto_of("Auto-Submitted", "auto-replied", NULL, NULL, env, NULL, 0, NULL),
	    "auto-submitted");
	T_EQ_STR(auto_of("Auto-Submitted", "auto-generated (vacation)", NULL, NULL, env, NULL, 0,
	    NULL), "auto-submitted");
	T_EQ_STR(auto_of("Auto-Submitted", "No", NULL, NULL, env, NULL, 0, NULL), "");
	T_EQ_STR(auto_of("Auto-Submitted", " no (a person)", NULL, NULL, env, NULL, 0, NULL), "");
	T_EQ_STR(auto_of("Precedence", "bulk", NULL, NULL, env, NULL, 0, NULL), "precedence-bulk");
	T_EQ_STR(auto_of("Precedence", "Junk", NULL, NULL, env, NULL, 0, NULL), "precedence-junk");
	T_EQ_STR(auto_of("Precedence", "list", NULL, NULL, env, NULL, 0, NULL), "precedence-list");
	T_EQ_STR(auto_of("Precedence", "auto_reply", NULL, NULL, env, NULL, 0, NULL),
	    "precedence-auto_reply");
	T_EQ_STR(auto_of("Precedence", "first-class", NULL, NULL, env, NULL, 0, NULL), "");
	T_EQ_STR(auto_of("List-Id", "<users.lists.example.org>", NULL, NULL, env, NULL, 0, NULL),
	    "list");
	T_EQ_STR(auto_of("List-Unsubscribe", "<mailto:u@example.org>", NULL, NULL, env, NULL, 0,
	    NULL), "list");
	T_EQ_STR(auto_of("List-Post", "<mailto:l@example.org>", NULL, NULL, env, NULL, 0, NULL),
	    "list");
	T_EQ_STR(auto_of("X-Auto-Response-Suppress", "All", NULL, NULL, env, NULL, 0, NULL),
	    "auto-response-suppress");
	static const char *const ar[] = {
		"X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autogenerated",
		"X-AutoReply-From", "X-Mail-Autoreply", "X-FC-MachineGenerated", "X-Auto-Generated",
		"x-autoreply",
	};
	for (size_t i = 0; i < sizeof(ar) / sizeof(ar[0]); i++)
		T_EQ_STR(auto_of(ar[i], "yes", NULL, NULL, env, NULL, 0, NULL), "autoreply");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, "", NULL, 0, NULL), "null-sender");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, "<>", NULL, 0, NULL), "null-sender");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL), "");	/* unknown */
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, "<MAILER-DAEMON@mx.example.org>", NULL, 0, NULL),
	    "mailer-daemon");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, "Postmaster@example.org", NULL, 0, NULL),
	    "mailer-daemon");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, "mailer-daemon@example.net", 0, NULL),
	    "mailer-daemon");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, "postmaster@example.net", 0, NULL),
	    "mailer-daemon");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, "mailer-daemon-fan@example.net", 0, NULL), "");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, NULL, MSG_REPORT, NULL), "delivery-report");
	T_EQ_STR(auto_of("X-Failed-Recipients", "a@example.org", NULL, NULL, env, NULL, 0, NULL),
	    "delivery-report");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, env, NULL, 0, "multipart/report"),
	    "delivery-report");
	/* the first that applies wins */
	T_EQ_STR(auto_of("List-Id", "<l>", "Auto-Submitted", "auto-generated", "", NULL, 0, NULL),
	    "auto-submitted");
	T_EQ_STR(auto_of("X-Autoreply", "yes", "Precedence", "bulk", "<>", NULL, MSG_REPORT, NULL),
	    "precedence-bulk");
	T_EQ_STR(auto_of(NULL, NULL, NULL, NULL, "<>", "mailer-daemon@example.net", MSG_REPORT,
	    NULL), "null-sender");
}

static void
test_categories(void)
{
	EXPECT_CAT("outgoing-mail", "", "I can't send emails, they bounce back with 550.");
	EXPECT_CAT("outgoing-mail", "", "Письма висят в исходящих и не уходят.");
	EXPECT_CAT("outgoing-mail", "", "Листи не відправляються, помилка SMTP.");
	EXPECT_CAT("outgoing-mail", "", "Our customers are not receiving my emails.");
	EXPECT_CAT("incoming-mail", "", "I am not receiving any emails since yesterday.");
	EXPECT_CAT("incoming-mail", "", "Не приходят письма на ящик info@.");
	EXPECT_CAT("incoming-mail", "", "Не надходять листи на скриньку.");
	EXPECT_CAT("login", "", "I forgot my password and now my account is locked.");
	EXPECT_CAT("login", "", "Не могу войти в почту, пишет неверный пароль.");
	EXPECT_CAT("login", "", "Не можу увійти, забув пароль.");
	EXPECT_CAT("billing", "", "I was charged twice for the same invoice, please refund.");
	EXPECT_CAT("billing", "", "Пришлите, пожалуйста, счёт на оплату за декабрь.");
	EXPECT_CAT("billing", "", "Надішліть рахунок на оплату, будь ласка.");
	EXPECT_CAT("security", "", "My account was hacked and is sending spam.");
	EXPECT_CAT("security", "", "I received a phishing email pretending to be you.");
	EXPECT_CAT("security", "", "Ящик взломали, рассылает спам.");
	EXPECT_CAT("outage", "", "Your control panel is down, it shows 503 Service Unavailable.");
	EXPECT_CAT("outage", "", "We can't send or receive anything.");
	EXPECT_CAT("outage", "", "Сервер не отвечает, сайт лежит.");
	EXPECT_CAT("feature-request", "", "Feature request: please add two calendars side by side.");
	EXPECT_CAT("feature-request", "", "Предлагаю добавить тёмную тему.");
	EXPECT_CAT("other", "", "Hello, please call me back tomorrow.");
	EXPECT_CAT("other", "", "");
}

static void
test_lang(void)
{
	EXPECT_LANG("en", "Problem", "Hello, my emails are not going out since this morning. "
	    "Can you please check?");
	EXPECT_LANG("ru", "", "Здравствуйте, письма не уходят с утра. Посмотрите, пожалуйста.");
	EXPECT_LANG("ru", "", "Почта не работает");	/* short, no ы/э/ъ */
	EXPECT_LANG("uk", "", "Добрий день, листи не відправляються з ранку. Перевірте, будь ласка.");
	EXPECT_LANG("uk", "", "Пошта не працює");
	/* Russian words with a Ukrainian company name: Russian */
	EXPECT_LANG("ru", "", "Добрый день! Мы из компании «Світло», у нас не работает почта, "
	    "письма не отправляются.");
	/* Russian text with a pasted English log: still Russian */
	EXPECT_LANG("ru", "", "Не могу отправить письмо, вот ошибка:\n"
	    "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6\nПомогите, пожалуйста.");
	/* English with a Russian greeting: English */
	EXPECT_LANG("en", "", "Привет! The emails are not going out from our office since the "
	    "update, and the web interface shows an error when we try to send.");
	EXPECT_LANG("de", "", "Hallo, ich kann seit heute Morgen keine E-Mails senden. "
	    "Bitte helfen Sie mir, es ist dringend.");
	EXPECT_LANG("fr", "", "Bonjour, je n'arrive pas à envoyer mes mails depuis ce matin. "
	    "Pouvez-vous regarder ? Merci, cordialement.");
	EXPECT_LANG("es", "", "Hola, no puedo enviar correos desde ayer y tampoco recibo nada. "
	    "Gracias por la ayuda, saludos.");
	EXPECT_LANG("pl", "", "Dzień dobry, nie mogę wysłać wiadomości od rana. Proszę o pomoc, "
	    "pozdrawiam.");
	EXPECT_LANG("it", "", "Buongiorno, non riesco a inviare email da stamattina. "
	    "Grazie per l'aiuto, cordiali saluti.");
	EXPECT_LANG("pt", "", "Olá, não consigo enviar e-mails desde ontem. Obrigado pela ajuda, "
	    "estou aguardando.");
	/* too little to claim anything but English */
	EXPECT_LANG("en", "", "Danke");
	EXPECT_LANG("en", "", "12345");
	EXPECT_LANG("en", "", "");
}

static int
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
		    (*p & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0 || (n == 2 && *p < 0xc2))
			return 0;
		for (int i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void
test_reasons(void)
{
	struct classify_result r;
	struct tmsg t;
	char big[4096];
	size_t n = 0;

	/* the phrases as the client wrote them, at most two per class */
	r = classify_text("Почта", "Письма не уходят, СРОЧНО, критично, немедленно!!!");
	T_CONTAINS(r.reasons, "state broken: \"не уходят\"");
	T_CONTAINS(r.reasons, "impact: \"СРОЧНО\", \"критично\", \"!!!\"");
	T_CHECK(strstr(r.reasons, "немедленно") == NULL);	/* third impact phrase */
	/* the weightiest ones: "теряем клиентов" (3) before "критично" (2) */
	r = classify_text("", "Письма не уходят, срочно, критично, теряем клиентов");
	T_CONTAINS(r.reasons, "impact: \"срочно\", \"теряем клиентов\"");

	/* everything at once, long phrases, odd bytes: still short and clean */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "URGENT ASAP CRITICAL EMERGENCY!!!\r\n");
	n += (size_t)snprintf(big + n, sizeof(big) - n,
	    "hacked data breach, emails are not going out, stuck in the outbox, relay access denied, "
	    "error bug problem broken, workaround webmail works, how do i thanks, "
	    "не отправляются письма срочно критично, листи не відправляються терміново, "
	    "\xff\xfe bad bytes \x01\x02\x7f, can\xe2\x80\x99t send, "
	    "невозможно отправить ни одного письма уже целый день, "
	    "не можемо надіслати жодного листа вже цілий день, "
	    "not urgent no rush, quoted below\n> quoted\n");
	tmsg_init(&t, "ОЧЕНЬ СРОЧНО: ВСЁ ЛЕЖИТ!!! 😱😱😱 письма не уходят", big);
	r = classify_full(rules, &t, "a@b");
	classify_adjust(&r, "trial", 1, 7);
	T_CHECK(strlen(r.reasons) <= CLASSIFY_REASONS_MAX);
	T_CHECK(utf8_ok(r.reasons));
	T_CHECK(strchr(r.reasons, '\r') == NULL);
	T_CHECK(strchr(r.reasons, '\n') == NULL);
	T_CONTAINS(r.reasons, "tier trial +1");		/* the raises always fit */
	T_CONTAINS(r.reasons, "7th message in 24h +1");
	for (const char *p = r.reasons; *p; p++)
		T_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);

	/* a long phrase is shortened at a character boundary */
	{
		struct buf errors;
		struct classify_rules *lr;

		buf_init(&errors, 4096);
		lr = load_one("outage 2 очень длинная фраза про то что письма совсем не уходят никуда\n",
		    &errors);
		T_CHECK(lr != NULL);
		tmsg_init(&t, "", "Очень длинная фраза про то что письма совсем не уходят никуда.");
		r = classify_full(lr, &t, "a@b");
		T_CHECK(utf8_ok(r.reasons));
		T_CONTAINS(r.reasons, "\xe2\x80\xa6\"");	/* … */
		classify_rules_free(lr);
		buf_free(&errors);
	}

	/* nothing to say */
	r = classify_text("", "Hello, please call me back tomorrow.");
	T_EQ_INT(r.content_urgency, 3);
	T_CONTAINS(r.reasons, "no problem wording");
}

/* Out-of-office replies known by their subject alone, and messages that
 * name nothing broken but ask something (issue 13). */
static void
test_auto_subject_and_questions(void)
{
	struct classify_result r;
	struct tmsg t;

	static const char *const ooo[] = {
		"Automatic reply: URGENT cannot send mail", "Out of Office: Re: [HG-12] outage",
		"Abwesenheitsnotiz: Ihre Anfrage", "Réponse automatique : panne", "Автоответ: Не работает почта",
		"Автовідповідь: терміново", "Respuesta automática: urgente", "Risposta automatica: urgente",
	};
	for (size_t i = 0; i < sizeof(ooo) / sizeof(ooo[0]); i++) {
		tmsg_init(&t, ooo[i], "I am out of the office until Monday. Urgent: nothing works!!!");
		r = classify_full(rules, &t, "client@example.org");
		T_EQ_STR(r.auto_reason, "autoreply-subject");
		T_EQ_INT(r.urgency, 4);
	}
	/* a person who mentions being out of office is a person */
	tmsg_init(&t, "Out of office next week: please change my plan", "Can I switch to the yearly plan?");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_STR(r.auto_reason, "");

	/* "???" under a quoted invoice, a bare "help": questions, P4 */
	tmsg_init(&t, "Re: Invoice 2026-11", "???\n\n> Invoice 2026-11: 49.00 EUR due on 1 December.\n");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 4);
	T_CONTAINS(r.reasons, "a question, no problem wording: P4");
	T_EQ_STR(r.category, "billing");	/* the reply's subject names the topic */
	tmsg_init(&t, "", "help");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 4);
	/* ... but never the urgency: the subject answered, with its capitals
	 * and "!!!", is the other side's words */
	tmsg_init(&t, "Re: URGENT!!! ALL MAIL IS DOWN", "Thanks, it works again now.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 4);
	T_CHECK(strstr(r.reasons, "CAPITALS") == NULL && strstr(r.reasons, "!!!") == NULL);
	/* a settings question names mail flow but nothing broken: category
	 * other (no diagnosis for it), P4 */
	tmsg_init(&t, "SMTP settings", "Which SMTP port and security should I use in Thunderbird? Thanks!");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 4);
	T_EQ_STR(r.category, "other");
	/* the same words with a failure stay outgoing-mail */
	tmsg_init(&t, "SMTP", "Thunderbird cannot send any email since this morning, SMTP error 535.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_STR(r.category, "outgoing-mail");
	/* Outlook's quoted header block as HTML mail becomes text: blank
	 * lines between "From:" and "Sent:" still start quoted text */
	tmsg_init(&t, "RE: WEBMAIL DOWN", "Thank you, all good now.\n\nFrom: Ann <ann@client.test>\n\n"
	    "Sent: Monday 9:03\n\nTo: support@example.com\n\nWEBMAIL IS DOWN, WHOLE OFFICE, CRITICAL!!!\n");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 4);
	T_CONTAINS(r.reasons, "quoted text ignored");
	/* a statement with nothing recognised stays the cautious P3 */
	tmsg_init(&t, "Calendar", "The calendar shows last week's appointments on the wrong days since the update.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.content_urgency, 3);
}

/* near rules: a function and its state said a few words apart (issue 13). */
static void
test_near(void)
{
	struct classify_result r;
	struct tmsg t;
	struct buf errors;
	struct classify_rules *own;

	/* the shipped lists: logins + a foreign place, either order, words apart */
	tmsg_init(&t, "Account", "Last night our account had dozens of logins, all of them from China.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 1);
	T_EQ_STR(r.category, "security");
	tmsg_init(&t, "Konto", "Wir sehen Anmeldungen aus dem Ausland, die wir nicht kennen.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 1);
	/* data loss: the object and the vanishing verb, apart, in Russian */
	tmsg_init(&t, "Помогите", "Сегодня утром все мои контакты куда-то исчезли из адресной книги.");
	r = classify_full(rules, &t, "client@example.org");
	T_EQ_INT(r.urgency, 1);
	/* good news is not data loss: the verb without a thing of the client's */
	tmsg_init(&t, "Fixed", "After the update the error message disappeared, thanks!");
	r = classify_full(rules, &t, "client@example.org");
	T_CHECK(r.urgency != 1);

	/* the rule's own semantics, on a list of its own */
	buf_init(&errors, 4096);
	own = load_one("group:thing 1 contacts\ngroup:gone 1 vanished\n"
	    "near security 3 12 group:thing group:gone\n", &errors);
	T_CHECK(own != NULL);
	if (own != NULL) {
		tmsg_init(&t, "", "my contacts have vanished");
		r = classify_full(own, &t, NULL);
		T_EQ_INT(r.urgency, 1);
		T_CONTAINS(r.reasons, "security: \"contacts have vanished\"");
		tmsg_init(&t, "", "vanished: contacts");		/* either order */
		r = classify_full(own, &t, NULL);
		T_EQ_INT(r.urgency, 1);
		tmsg_init(&t, "", "contacts are all fine, only one photo has vanished");	/* too far apart */
		r = classify_full(own, &t, NULL);
		T_CHECK(r.urgency != 1);
		tmsg_init(&t, "contacts", "vanished");	/* subject and body do not pair */
		r = classify_full(own, &t, NULL);
		T_CHECK(r.urgency != 1);
		classify_rules_free(own);
	}
	T_CHECK(load_one("near security 3 12 outage defect\n", &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "group:NAME");
	T_CHECK(load_one("group:a 1 x\ngroup:b 1 y\nnear security 3 0 group:a group:b\n", &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "bad window");
	T_CHECK(load_one("near security 3\n", &errors) == NULL);
	T_CONTAINS(buf_str(&errors), "usage: near");
	buf_free(&errors);
}

static void
test_robustness(void)
{
	struct msg m;
	struct classify_result r;
	struct tmsg t;
	char *huge;
	size_t hlen = 300 * 1024;

	/* NULL strings */
	memset(&m, 0, sizeof(m));
	classify_message(rules, &m, NULL, &r);
	T_EQ_INT(r.content_urgency, 4);	/* no words at all: like a bare "???" */
	T_EQ_STR(r.category, "other");
	T_EQ_STR(r.lang, "en");
	T_EQ_STR(r.auto_reason, "");

	/* text_len 0 with text: the string is read to its NUL */
	tmsg_init(&t, "", "emails are not going out");
	t.m.text_len = 0;
	r = classify_full(rules, &t, "a@b");
	T_EQ_INT(r.content_urgency, 2);

	/* invalid UTF-8, controls, a lone lead byte at the end */
	tmsg_init(&t, "\xd0", "\xc3\x28 emails \xe2\x82 are \xf0\x9f not going out \x80\xbf\xd1");
	r = classify_full(rules, &t, "a@b");
	T_EQ_INT(r.content_urgency, 2);
	T_CHECK(utf8_ok(r.reasons));

	/* one huge line, full of phrase starts */
	huge = malloc(hlen + 1);
	for (size_t i = 0; i < hlen; i++)
		huge[i] = "not going ou"[i % 12];
	huge[hlen] = '\0';
	tmsg_init(&t, "", huge);
	r = classify_full(rules, &t, "a@b");
	T_EQ_INT(r.content_urgency, 3);
	/* a phrase at the very end of a huge text, and one across the pieces
	 * the matcher splits the text into */
	memset(huge, ' ', hlen);
	memcpy(huge + hlen - 21, "emails not going out", 20);
	r = classify_full(rules, &t, "a@b");
	T_EQ_INT(r.content_urgency, 2);
	memset(huge, 'x', hlen);
	for (size_t i = 1; i < 20; i++)
		memcpy(huge + i * (hlen / 20) - 8, " stuck in outbox ", 17);
	r = classify_full(rules, &t, "a@b");
	T_EQ_INT(r.content_urgency, 2);
	T_CONTAINS(r.reasons, "stuck in outbox");
	free(huge);
}

/* Phrases found by the interleaved matcher are the same as by reading the
 * text piece by piece: the same message classified alone and inside a long
 * text gives the same scores. */
static void
test_long_text(void)
{
	static const char *const para[] = {
		"Hello, since this morning some messages stay in the outbox.\n",
		"Здравствуйте! Часть писем висит в исходящих, подскажите, что делать.\n",
		"> quoted: URGENT critical\n",
		"We use Outlook and Thunderbird, webmail works fine though.\n",
		"Спасибо за помощь, это не срочно.\n",
	};
	struct buf b;
	struct classify_result r;

	buf_init(&b, 1 << 20);
	for (int i = 0; b.len < 200 * 1024; i++)
		buf_append_str(&b, para[i % 5]);
	r = classify_text("Re: mail", buf_str(&b));
	T_EQ_INT(r.content_urgency, 3);		/* outage, but a workaround */
	T_EQ_STR(r.category, "outgoing-mail");
	T_CONTAINS(r.reasons, "quoted text ignored");
	T_CONTAINS(r.reasons, "workaround: \"webmail works\"");
	buf_free(&b);
}

struct thread_case {
	const char *subject, *text;
	struct classify_result want;
	int failures;
};

static void *
thread_main(void *arg)
{
	struct thread_case *c = arg;

	for (int i = 0; i < 200; i++) {
		struct classify_result r = classify_text(c->subject, c->text);

		if (memcmp(&r, &c->want, sizeof(r)) != 0)
			c->failures++;
	}
	return NULL;
}

static void
test_threads(void)
{
	struct thread_case cases[] = {
		{ "URGENT", "Emails are not going out, we are losing customers!!!", { 0 }, 0 },
		{ "", "Письма не уходят, зависли в исходящих. Спасибо.", { 0 }, 0 },
		{ "", "Дякую, все запрацювало!", { 0 }, 0 },
		{ "Hacked", "Someone logged into my account and sends spam.", { 0 }, 0 },
	};
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		memset(&cases[i].want, 0, sizeof(cases[i].want));
		cases[i].want = classify_text(cases[i].subject, cases[i].text);
	}
	for (int i = 0; i < 4; i++)
		T_CHECK(pthread_create(&th[i], NULL, thread_main, &cases[i]) == 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		T_EQ_INT(cases[i].failures, 0);
	}
}

/* A reply's subject is the subject answered: "Re: URGENT!!! cannot send"
 * over a calm "thanks, it works" is not an outage.  A fresh subject with
 * the same words still counts. */
static void
test_reply_subject(void)
{
	struct classify_result r;

	r = classify_text("Re: [HG-1042] URGENT: cannot send email",
	    "Thanks, sending works again for most of us.\n");
	T_CHECK(r.content_urgency >= 3);
	r = classify_text("RE: URGENT!!! cannot send email", "Thank you, all fixed.\n");
	T_CHECK(r.content_urgency >= 3);
	r = classify_text("AW: Dringend: E-Mails werden nicht versendet", "Danke, es funktioniert.\n");
	T_CHECK(r.content_urgency >= 3);
	r = classify_text("Ответ: Срочно! Не отправляются письма", "Спасибо, всё работает.\n");
	T_CHECK(r.content_urgency >= 3);
	r = classify_text("Відповідь: Терміново! Не надсилаються листи", "Дякую, все працює.\n");
	T_CHECK(r.content_urgency >= 3);
	/* The body still speaks for itself. */
	r = classify_text("Re: [HG-7] mail", "URGENT: we still cannot send any email!!!\n");
	T_EQ_INT(r.content_urgency, 1);
	/* Not a reply: the subject counts. */
	r = classify_text("URGENT: cannot send email", "See subject.\n");
	T_EQ_INT(r.content_urgency, 1);
	r = classify_text("Report: cannot send email, urgent", "See subject.\n");
	T_EQ_INT(r.content_urgency, 1);
}


/* The shipped classifier, rules and learned part together, on mail whose
 * answer no reading of the rubric disputes.  (The corpora under tests/eval
 * measure it; this only catches a model that lost its way.) */
static void
test_learned(void)
{
	static const struct {
		const char *want, *subject, *text;
	} cases[] = {
		{ "P1", "URGENT: nobody in the office can send email",
		  "Since 9am none of our 30 users can send any email. We are losing orders. "
		  "Please help ASAP!" },
		{ "P1", "Взломали почту",
		  "Кто-то вошёл в мой ящик из Китая и рассылает спам всем моим контактам." },
		{ "P1", "Зникли всі листи",
		  "Сьогодні зранку з папки Вхідні зникли всі листи за два роки." },
		{ "P1", "Passwort auf gefälschter Seite eingegeben",
		  "Ich habe gestern mein Passwort auf einer Seite eingegeben, die wie Ihre aussah. "
		  "Jetzt bekommen meine Kunden seltsame Mails von mir." },
		{ "P2", "Cannot send email",
		  "Since this morning I cannot send any email, Outlook says 'Sending reported error "
		  "0x800CCC0F'. Could you take a look?" },
		{ "P4", "Question about signatures",
		  "How do I add a signature with our logo in webmail? Thanks!" },
		{ "P4", "Merci", "Merci beaucoup, tout fonctionne à nouveau !" },
	};
	struct classify_rules *full;
	struct classify_result r;
	struct buf errors;
	struct tmsg t;

	buf_init(&errors, 4096);
	full = classify_rules_load("conf/keywords", &errors);
	T_CHECK(full != NULL);
	if (full == NULL) {
		fprintf(stderr, "%s", buf_str(&errors));
		buf_free(&errors);
		return;
	}
	T_CHECK(classify_rules_learned(full));
	T_CHECK(!classify_rules_learned(rules));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tmsg_init(&t, cases[i].subject, cases[i].text);
		r = classify_full(full, &t, "client@example.org");
		T_EQ_STR(classify_urgency_name(r.content_urgency), cases[i].want);
		if (strcmp(classify_urgency_name(r.content_urgency), cases[i].want) != 0)
			fprintf(stderr, "  subject: %s\n  reasons: %s\n", cases[i].subject, r.reasons);
		T_CHECK(strlen(r.reasons) <= CLASSIFY_REASONS_MAX);
	}
	/* machine mail stays the rules': P4, never raised, whatever it quotes */
	tmsg_init(&t, "Automatic reply: URGENT: nobody can send email",
	    "I am out of the office until Monday.\n> URGENT!!! nobody can send email, we are losing orders");
	tmsg_header(&t, "Auto-Submitted", "auto-replied");
	r = classify_full(full, &t, "client@example.org");
	T_EQ_INT(r.content_urgency, 4);
	T_CHECK(r.auto_reason[0] != '\0');
	classify_rules_free(full);
	buf_free(&errors);
}

int
main(void)
{
	struct buf errors;

	buf_init(&errors, 64 * 1024);
	rules = classify_rules_load_opts("conf/keywords", CLASSIFY_RULES_ONLY, &errors);
	if (rules == NULL)
		fprintf(stderr, "conf/keywords: %s", buf_str(&errors));
	T_EQ_STR(buf_str(&errors), "");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_classify.XXXXXX");
	if (mkdtemp(tmpdir) == NULL || rules == NULL) {
		perror("mkdtemp");
		return t_done() ? 1 : 2;
	}

	test_load();
	test_matching();
	test_rubric_en();
	test_rubric_ru();
	test_rubric_uk();
	test_phrasings();
	test_other_languages();
	test_shouting();
	test_quoting();
	test_reply_subject();
	test_negation();
	test_adjust();
	test_auto();
	test_categories();
	test_lang();
	test_reasons();
	test_auto_subject_and_questions();
	test_near();
	test_robustness();
	test_long_text();
	test_threads();
	test_learned();

	clear_dir(tmpdir);
	rmdir(tmpdir);
	classify_rules_free(rules);
	buf_free(&errors);
	return t_done();
}
