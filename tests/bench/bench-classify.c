/*
 * bench-classify - how fast the classifier reads a large message.
 *
 * Builds a ~100 KB support message (English and Russian paragraphs, a
 * pasted log, some quoted lines, keywords scattered through it, so that the
 * folding, the automaton and the hit path all work), then runs
 * classify_message() on it for about two seconds, and msg_parse() +
 * classify_message() on the same message as raw RFC 5322 text.  Prints
 *     classify 100KB: NNNN msg/s (NNN MB/s)
 *     parse+classify 100KB: NNNN msg/s (NNN MB/s)
 * Rates are per second of this process's CPU time (each measurement runs
 * for about that long), so other work on a shared machine distorts them
 * less than wall-clock time would.  Run from the repository root (reads
 * conf/keywords), or pass the keyword directory and the seconds per
 * measurement:
 *     bench-classify [KEYWORDS_DIR [SECONDS]]
 * The target is 5000 msg/s for classify alone on one core; a last line
 * says whether it was met, and with BENCH_STRICT=1 in the environment a
 * miss is exit status 1 (as tests/bench/run.sh does for its targets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"

#define TARGET_BYTES	(100 * 1024)
#define TARGET_RATE	5000.0	/* classify_message() calls per CPU second */

static const char *const paragraphs[] = {
	/* each in parentheses: one element of several literals (clang -Wstring-concatenation) */
	("Hello support team,\n"
	 "since this morning our office has trouble with email. Some messages stay in\n"
	 "the outbox for a long time and then go out, others seem fine. We use Outlook\n"
	 "on Windows and Thunderbird on two laptops. The download of new mail is slow as\n"
	 "well, but I am not sure whether that is related.\n"),

	("Здравствуйте! У нас с утра проблемы с почтой: часть писем уходит нормально,\n"
	 "а часть висит в исходящих по полчаса. Мы ничего не меняли в настройках,\n"
	 "пароль тот же, компьютеры те же. Подскажите, пожалуйста, в чём может быть\n"
	 "дело и что нам проверить со своей стороны.\n"),

	("Here is what the client shows when it fails (copied from the log window):\n"
	 "2026-11-23 09:14:02 SMTP: 250 2.1.0 Sender OK\n"
	 "2026-11-23 09:14:03 SMTP: 451 4.7.1 Greylisted, please try again later\n"
	 "2026-11-23 09:20:11 SMTP: 250 2.0.0 Ok: queued as 4F2A91C03\n"),

	("> On the previous ticket you told us to check the DNS records.\n"
	 "> We did that and the MX and SPF records look correct to us.\n"
	 "> Please tell us if anything else is needed.\n"),

	("Также бухгалтерия спрашивает про счёт за прошлый месяц: оплата прошла,\n"
	 "но закрывающие документы мы пока не получили. Это не срочно, просто\n"
	 "напоминаем. Спасибо за помощь!\n"),

	("We have about forty users in two offices. Most of them only use webmail,\n"
	 "a few use phones with the built-in mail app. Nobody reported problems with\n"
	 "receiving messages, it is only sending from desktop clients that is slow.\n"
	 "If you need remote access to one of the machines we can arrange that.\n"),

	("Кстати, коллеги из второго офиса пишут, что у них всё работает, но они\n"
	 "подключены через другого провайдера. Может быть, дело в нашем канале?\n"
	 "Скорость интернета в норме, сайты открываются быстро.\n"),

	("Thanks in advance, and sorry for the long message. I wanted to give you all\n"
	 "the details at once so that we do not have to go back and forth.\n"),
};

static char *
build_text(size_t *len)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b, 2 * TARGET_BYTES);
	while (b.len < TARGET_BYTES) {
		buf_append_str(&b, paragraphs[i++ % (sizeof(paragraphs) / sizeof(paragraphs[0]))]);
		buf_append_char(&b, '\n');
	}
	*len = b.len;
	return buf_steal(&b);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints one result line; returns messages per second. */
static double
report(const char *what, long n, double secs, size_t bytes)
{
	printf("%s %zuKB: %.0f msg/s (%.0f MB/s)\n", what, bytes / 1024, (double)n / secs,
	    (double)n * (double)bytes / secs / 1e6);
	return (double)n / secs;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "conf/keywords";
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 2.0;
	struct classify_rules *rules;
	struct classify_result res;
	struct msg m;
	struct buf errors, raw;
	char *text;
	size_t text_len;
	double t0, t, rate;
	const char *strict = getenv("BENCH_STRICT");
	long n;

	if (seconds <= 0 || seconds > 60)
		seconds = 2.0;
	buf_init(&errors, 64 * 1024);
	if ((rules = classify_rules_load(dir, &errors)) == NULL) {
		fprintf(stderr, "bench-classify: %s", buf_str(&errors));
		return 1;
	}
	text = build_text(&text_len);

	memset(&m, 0, sizeof(m));
	m.subject = "Re: письма висят в исходящих / mail stuck in outbox";
	m.from_address = "ivan@example.com";
	m.from_name = "Ivan";
	m.message_id = "bench@example.com";
	m.in_reply_to = "";
	m.content_type = "text/plain";
	m.text = text;
	m.text_len = text_len;

	classify_message(rules, &m, "ivan@example.com", &res);
	printf("# %s %s %s; %s\n", classify_urgency_name(res.urgency), res.category, res.lang,
	    res.reasons);

	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < 100; i++)
			classify_message(rules, &m, "ivan@example.com", &res);
		n += 100;
	} while ((t = now() - t0) < seconds);
	rate = report("classify", n, t, text_len);

	buf_init(&raw, 4 * TARGET_BYTES);
	buf_append_str(&raw,
	    "From: Ivan <ivan@example.com>\r\n"
	    "To: support@example.com\r\n"
	    "Subject: =?UTF-8?B?UmU6INC/0LjRgdGM0LzQsCDQstC40YHRj9GCINCyINC40YHRhdC+0LTRj9GJ0LjRhQ==?=\r\n"
	    "Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n"
	    "Message-ID: <bench@example.com>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n");
	buf_append(&raw, text, text_len);

	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < 20; i++) {
			struct msg *pm = msg_parse(raw.data, raw.len, 1024 * 1024);

			classify_message(rules, pm, "ivan@example.com", &res);
			msg_free(pm);
		}
		n += 20;
	} while ((t = now() - t0) < seconds);
	report("parse+classify", n, t, raw.len);

	printf("classify target %.0f msg/s: %s\n", TARGET_RATE, rate >= TARGET_RATE ? "met" : "MISSED");

	buf_free(&raw);
	free(text);
	buf_free(&errors);
	classify_rules_free(rules);
	return rate < TARGET_RATE && strict && strcmp(strict, "1") == 0 ? 1 : 0;
}
