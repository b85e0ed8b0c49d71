/*
 * msg - turn an untrusted RFC 5322/MIME message into what a person reads.
 *
 * msg_parse() takes the raw message (header block, blank line, body; CRLF or
 * LF line ends; possibly cut short by the caller's scan limit) and returns
 * decoded UTF-8:
 *   - header values with RFC 2047 encoded-words decoded (any charset iconv
 *     knows; an unknown charset leaves the encoded-word as it was and sets
 *     MSG_UNKNOWN_CHARSET);
 *   - the body text: the first text/plain part that is not an attachment,
 *     else the first text/html part reduced to text, transfer encoding
 *     (quoted-printable, base64, 7bit/8bit) and charset (utf-8, koi8-r,
 *     windows-1251, iso-8859-*, ...) decoded to UTF-8; attachments skipped;
 *   - flags describing what was odd about the message.
 * It never fails on malformed input: whatever can be read is returned and
 * MSG_MALFORMED is set.  All output strings are valid UTF-8 (invalid bytes
 * are replaced by U+FFFD), NUL-terminated, free of NUL bytes, and capped.
 * The result is owned by the caller: msg_free() (accepts NULL).
 */
#ifndef HG_MSG_H
#define HG_MSG_H

#include <stddef.h>

#define MSG_MALFORMED		0x01	/* MIME structure was broken; best effort */
#define MSG_TRUNCATED		0x02	/* input or text was cut at a limit */
#define MSG_UNKNOWN_CHARSET	0x04	/* a charset iconv does not know; bytes kept as is */
#define MSG_HTML_ONLY		0x08	/* no text/plain: text came from HTML */
#define MSG_REPORT		0x10	/* multipart/report or message/delivery-status */
#define MSG_NO_TEXT		0x20	/* no readable text part at all */

struct msg_header {
	char	*name;		/* as sent, e.g. "Subject" */
	char	*raw;		/* raw value, unfolded, leading space removed */
	char	*value;		/* RFC 2047 decoded UTF-8 */
};

struct msg {
	struct msg_header *headers;	/* in message order */
	size_t		   header_count;
	char		  *subject;	/* decoded; "" when absent */
	char		  *from_address;	/* addr-spec of From, lowercase; "" if none */
	char		  *from_name;	/* decoded display name; "" if none */
	char		  *message_id;	/* without <>; "" when absent */
	char		  *in_reply_to;	/* first msg-id without <>; "" */
	char		 **references;	/* msg-ids without <>, oldest first */
	size_t		   reference_count;
	char		  *content_type;	/* top level, lowercase "type/subtype"; "text/plain" default */
	char		  *text;	/* the readable body text, UTF-8 */
	size_t		   text_len;
	unsigned	   flags;	/* MSG_* */
};

/* Parses raw[0..len).  max_text caps the decoded body text (bytes).
 * Never returns NULL. */
struct msg	*msg_parse(const char *raw, size_t len, size_t max_text);
void		 msg_free(struct msg *m);

/* First header with this name (case-insensitive), decoded value; NULL if none. */
const char	*msg_header(const struct msg *m, const char *name);
/* Raw value, for headers whose value is structured (Auto-Submitted, ...). */
const char	*msg_header_raw(const struct msg *m, const char *name);

/* RFC 2047 helpers, also used for headers helpgate writes. */
/* Decodes encoded-words in a header value; result is UTF-8, caller frees. */
char		*msg_decode_header_value(const char *raw);
/* Encodes UTF-8 text for an unstructured header (e.g. Subject) as ASCII: the
 * text itself when it is plain printable ASCII, else =?UTF-8?B?...?= words of
 * at most 75 characters, separated by "\n " folding when there is more than
 * one (libmilter and RFC 5322 folding).  first_line_used: characters already
 * used on the first line ("Subject: " = 9).  CR, LF and NUL in the input are
 * replaced by spaces.  Caller frees. */
char		*msg_encode_header_value(const char *utf8, size_t first_line_used);

/* Converts len bytes in charset to UTF-8 (invalid sequences -> U+FFFD).
 * Returns NULL when iconv does not know the charset. Caller frees. */
char		*msg_charset_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen);

#endif
