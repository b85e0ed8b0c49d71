/*
 * msg - turn an untrusted RFC 5322/MIME message into what a person reads.
 *
 * msg_parse() takes the raw message (header block, blank line, body; CRLF or
 * LF line ends; possibly cut short by the caller's scan limit) and returns
 * decoded UTF-8:
 *   - header values unfolded, trimmed, with RFC 2047 encoded-words decoded
 *     (any charset iconv knows; adjacent words joined).  A word in an
 *     unknown charset is kept decoded when its bytes are valid UTF-8 and is
 *     otherwise left as it was; MSG_UNKNOWN_CHARSET is set either way.
 *     At most MSG_MAX_ENCODED_WORDS words are decoded per message; words
 *     after those are left as they were (MSG_TRUNCATED).
 *     Raw 8-bit header text is UTF-8 when valid, else decoded by guess
 *     (windows-1251, KOI8 or windows-1252).  CR, LF and NUL become spaces.
 *   - the body text: the first text/plain part that is not an attachment
 *     (Content-Disposition: attachment, or a name/filename parameter), else
 *     the first such text/html part reduced to text (MSG_HTML_ONLY);
 *     nested multiparts are walked (at most MSG_MAX_DEPTH levels, at most
 *     MSG_MAX_PARTS parts in all: deeper or later parts are not read, and
 *     MSG_MALFORMED or MSG_TRUNCATED says so); an attached message/rfc822
 *     is read only when there is no other text.  Transfer
 *     encoding (quoted-printable, base64, 7bit/8bit) and charset (utf-8,
 *     koi8-r, windows-1251, iso-8859-*, ...) are decoded to UTF-8; a part
 *     without a charset is UTF-8 when valid, else guessed as above; line
 *     ends become "\n", a byte order mark is dropped, NUL becomes a space.
 *   - flags describing what was odd about the message.
 * It never fails on malformed input: whatever can be read is returned and
 * MSG_MALFORMED is set.  A multipart whose closing boundary is missing (the
 * input was cut short) still yields the parts that are there.  All output
 * strings are valid UTF-8 (invalid bytes become U+FFFD), NUL-terminated,
 * free of NUL bytes, and capped: at most 1000 headers, 64 KiB per header
 * value, 256 references, max_text bytes of body text.
 *
 * Cost is linear in the input (nesting depth, parts and encoded-words are
 * capped, a charset converter is opened once per message and charset, the
 * chosen part is decoded only up to a multiple of max_text); about 30 us
 * for 100 KB of plain text.  Thread-safe: no
 * shared state (libxml2 is initialised once).
 * The result is owned by the caller: msg_free() (accepts NULL).
 */
#ifndef HG_MSG_H
#define HG_MSG_H

#include <stddef.h>

#define MSG_MALFORMED		0x01	/* MIME structure was broken (missing or unused
					 * boundary, no blank line after the header,
					 * junk in base64); best effort */
#define MSG_TRUNCATED		0x02	/* input or text was cut at a limit */
#define MSG_UNKNOWN_CHARSET	0x04	/* a charset we do not convert; bytes kept
					 * (sanitised) or guessed as for no charset */
#define MSG_HTML_ONLY		0x08	/* no text/plain: text came from HTML */
#define MSG_REPORT		0x10	/* multipart/report or message/delivery-status
					 * (not inside a forwarded message/rfc822) */
#define MSG_NO_TEXT		0x20	/* no text part, or only white space in it */

/* Work caps per message (per call of msg_parse(), msg_decode_header_value()
 * or msg_charset_to_utf8()): past them the rest is not decoded, never an
 * error; MSG_TRUNCATED says a cap cut something off (MSG_MALFORMED for
 * depth).  A charset past MSG_MAX_CHARSETS is treated as one iconv does
 * not know. */
#define MSG_MAX_HEADERS		1000	/* header fields kept */
#define MSG_MAX_DEPTH		16	/* MIME nesting levels walked */
#define MSG_MAX_PARTS		1000	/* MIME entities walked, all levels */
#define MSG_MAX_ENCODED_WORDS	4096	/* RFC 2047 encoded-words decoded, all headers */
#define MSG_MAX_CHARSETS	64	/* charsets converted (distinct iconv names) */

struct msg_header {
	char	*name;		/* as sent, e.g. "Subject" */
	char	*raw;		/* raw value, unfolded, trimmed (invalid bytes U+FFFD) */
	char	*value;		/* RFC 2047 decoded UTF-8, trimmed */
};

struct msg {
	struct msg_header *headers;	/* in message order */
	size_t		   header_count;
	char		  *subject;	/* decoded; "" when absent */
	char		  *from_address;	/* addr-spec of From, lowercase; "" if none;
					 * may lack '@' ("mailer-daemon") */
	char		  *from_name;	/* decoded display name; "" if none */
	char		  *message_id;	/* without <>; "" when absent */
	char		  *in_reply_to;	/* first msg-id without <>; "" */
	char		 **references;	/* msg-ids without <>, oldest first; past 256
					 * the first and the 255 newest are kept */
	size_t		   reference_count;
	char		  *content_type;	/* top level, lowercase "type/subtype"; "text/plain" default */
	char		  *text;	/* the readable body text, UTF-8, "\n" line ends */
	size_t		   text_len;	/* strlen(text), <= max_text */
	unsigned	   flags;	/* MSG_* */
};

/* Parses raw[0..len) (raw may be NULL when len is 0).  max_text caps the
 * decoded body text in bytes, cut on a character boundary (MSG_TRUNCATED).
 * Never returns NULL; out of memory is fatal (xalloc.h). */
struct msg	*msg_parse(const char *raw, size_t len, size_t max_text);
void		 msg_free(struct msg *m);

/* First header with this name (case-insensitive), decoded value; NULL if none. */
const char	*msg_header(const struct msg *m, const char *name);
/* Raw value, for headers whose value is structured (Auto-Submitted, ...). */
const char	*msg_header_raw(const struct msg *m, const char *name);

/* RFC 2047 helpers, also used for headers helpgate writes. */
/* Decodes encoded-words in a header value, which may still be folded; the
 * result is UTF-8, trimmed, at most 64 KiB, never NULL (NULL in gives "").
 * Caller frees. */
char		*msg_decode_header_value(const char *raw);
/* Encodes UTF-8 text for an unstructured header (e.g. Subject) as ASCII: the
 * text itself when it is plain printable ASCII, else =?UTF-8?B?...?= words of
 * at most 75 characters, separated by "\n " folding when there is more than
 * one (libmilter and RFC 5322 folding).  first_line_used: characters already
 * used on the first line ("Subject: " = 9).  CR, LF and NUL in the input are
 * replaced by spaces, invalid UTF-8 by U+FFFD.  Printable ASCII is folded
 * at spaces to keep lines within 78 characters where a space allows it; an
 * ASCII word that would pass 998, or text containing "=?", is encoded.  A
 * word never splits a UTF-8 character; each encoded line but the first is
 * at most 73 characters, the first at most 78 unless first_line_used
 * leaves no room for a word holding one character (past about 58).
 * msg_decode_header_value() gives the (sanitised, trimmed) text back.
 * Caller frees. */
char		*msg_encode_header_value(const char *utf8, size_t first_line_used);

/* Converts len bytes in charset to UTF-8 (invalid sequences -> U+FFFD; NUL
 * bytes are kept, so use *outlen).  Accepts the aliases real mail uses
 * ("utf8", "win-1251", "ks_c_5601-1987", ...); "" or "us-ascii" means
 * "UTF-8 if valid, else guessed".  Returns NULL for a charset we do not
 * convert (unknown to iconv, or outside the families mail uses, such as
 * EBCDIC).  outlen may be NULL.  Caller frees. */
char		*msg_charset_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen);

/* Where the readable text lives in raw, for rewriting it (staff commands
 * taken out of the client's copy): the body of the first text/plain and
 * of the first text/html part that is not an attachment, as msg_parse()
 * finds them; found 0 when there is none. */
#define MSG_CTE_IDENTITY	0
#define MSG_CTE_BASE64		1
#define MSG_CTE_QP		2
struct msg_text_span {
	int	found;
	size_t	start, end;	/* offsets of the part's body in raw */
	int	cte;		/* MSG_CTE_* */
	int	html;
};
void	msg_text_spans(const char *raw, size_t len, struct msg_text_span *plain,
	    struct msg_text_span *html);
/* Content-Transfer-Encoding of a body, both ways (base64 in 76-column
 * lines, quoted-printable with soft breaks; CRLF line ends); appends. */
struct buf;
void	msg_cte_decode(int cte, const char *in, size_t len, struct buf *out);
void	msg_cte_encode(int cte, const char *in, size_t len, struct buf *out);

#endif
