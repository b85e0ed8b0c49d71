/*
 * test_json - the JSON writer: escaping (quotes, backslash, every control
 * character, U+2028/2029), UTF-8 passed through or repaired (invalid,
 * overlong, surrogate, truncated sequences become U+FFFD), and comma
 * placement for objects, arrays and indented output.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "t.h"

/* json_string(in) into a fresh buffer, compared with want. */
static void
check_string(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	json_string(&b, in);
	T_EQ_STR(buf_str(&b), want);
	buf_free(&b);
}

static void
test_escaping(void)
{
	check_string("", "\"\"");
	check_string("plain", "\"plain\"");
	check_string("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_string("C:\\path", "\"C:\\\\path\"");
	check_string("a/b", "\"a/b\"");
	check_string("l1\nl2\r\n\tx", "\"l1\\nl2\\r\\n\\tx\"");
	check_string("\x01\x08\x0c\x1b\x1f", "\"\\u0001\\u0008\\u000c\\u001b\\u001f\"");
	check_string("del\x7f", "\"del\\u007f\"");
	check_string("\xE2\x80\xA8\xE2\x80\xA9", "\"\\u2028\\u2029\"");

	/* Every byte below 0x20 is escaped, none passes raw. */
	{
		char in[2] = { 0, 0 };
		struct buf b;
		int raw = 0;

		buf_init(&b, 1 << 16);
		for (int c = 1; c < 0x20; c++) {
			in[0] = (char)c;
			json_string(&b, in);
		}
		for (size_t i = 0; i < b.len; i++)
			if ((unsigned char)b.data[i] < 0x20)
				raw++;
		T_EQ_INT(raw, 0);
		buf_free(&b);
	}
}

static void
test_utf8(void)
{
	/* Valid UTF-8 is kept as it is. */
	check_string("Привіт, світ", "\"Привіт, світ\"");
	check_string("€ 😀 中文", "\"€ 😀 中文\"");
	check_string("\xC2\xA0", "\"\xC2\xA0\"");	/* U+00A0 */
	/* C1 controls are escaped: U+009B is CSI to an 8-bit terminal. */
	check_string("\xC2\x80\xC2\x9B", "\"\\u0080\\u009b\"");
	check_string("\xF4\x8F\xBF\xBF", "\"\xF4\x8F\xBF\xBF\"");	/* U+10FFFF */

	/* Invalid sequences become U+FFFD, one per bad byte. */
	check_string("a\xFFz", "\"a\xEF\xBF\xBDz\"");
	check_string("\x80", "\"\xEF\xBF\xBD\"");				/* lone continuation */
	check_string("\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");		/* overlong '/' */
	check_string("\xE0\x80\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
	check_string("\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");	/* surrogate */
	check_string("\xF4\x90\x80\x80",					/* past U+10FFFF */
	    "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
	check_string("ok\xD0", "\"ok\xEF\xBF\xBD\"");			/* cut at the end */
	check_string("\xE2\x82z", "\"\xEF\xBF\xBD\xEF\xBF\xBDz\"");	/* cut in the middle */
}

static void
test_structure(void)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	json_object_begin(&b);
	json_kv_string(&b, "name", "x");
	json_kv_int(&b, "n", -42);
	json_kv_bool(&b, "yes", 1);
	json_kv_bool(&b, "no", 0);
	json_kv_null(&b, "none");
	json_key(&b, "list");
	json_array_begin(&b);
	json_object_begin(&b);
	json_object_end(&b);
	json_object_begin(&b);
	json_kv_int(&b, "a", 1);
	json_object_end(&b);
	json_array_begin(&b);
	json_array_end(&b);
	json_array_end(&b);
	json_key(&b, "empty");
	json_object_begin(&b);
	json_object_end(&b);
	json_object_end(&b);
	T_EQ_STR(buf_str(&b), "{\"name\":\"x\",\"n\":-42,\"yes\":true,\"no\":false,\"none\":null,"
	    "\"list\":[{},{\"a\":1},[]],\"empty\":{}}");

	/* Indentation the caller adds does not confuse the separators. */
	buf_reset(&b);
	buf_append_str(&b, "[\n  ");
	json_object_begin(&b);
	json_kv_string(&b, "k", "v");
	json_object_end(&b);
	buf_append_str(&b, "\n  ");
	json_object_begin(&b);
	json_object_end(&b);
	buf_append_str(&b, "\n");
	json_array_end(&b);
	T_EQ_STR(buf_str(&b), "[\n  {\"k\":\"v\"}\n  ,{}\n]");

	/* Keys are escaped like values. */
	buf_reset(&b);
	json_object_begin(&b);
	json_kv_string(&b, "we\"ird\n", "");
	json_object_end(&b);
	T_EQ_STR(buf_str(&b), "{\"we\\\"ird\\n\":\"\"}");

	/* A value that ends in a brace-like character inside a string is still
	 * a complete value: the next key gets its comma. */
	buf_reset(&b);
	json_object_begin(&b);
	json_kv_string(&b, "a", "{[");
	json_kv_string(&b, "b", ":,");
	json_object_end(&b);
	T_EQ_STR(buf_str(&b), "{\"a\":\"{[\",\"b\":\":,\"}");
	buf_free(&b);
}

int
main(void)
{
	test_escaping();
	test_utf8();
	test_structure();
	return t_done();
}
