/*
 * json - a tiny JSON writer into a struct buf (for helpgatectl --json).
 *
 * Strings are taken as UTF-8 and always come out as valid JSON: '"', '\\'
 * and control characters are escaped (C0, DEL and the C1 range, which a
 * terminal may obey when someone cats the output), U+2028/U+2029 too (so
 * the output can be pasted into JavaScript), and bytes that are not valid
 * UTF-8 become U+FFFD rather than producing a document a parser would
 * reject.
 *
 * Commas are placed for the caller: json_key(), json_object_begin() and
 * json_array_begin() (and the json_kv_* helpers built on them) put a ','
 * before themselves unless the buffer is empty or its last character other
 * than white space is '{', '[', ':' or ','.  That works because a complete
 * value never ends in one of those.
 * json_string() writes only the quoted string, with no separator.
 */
#ifndef HG_JSON_H
#define HG_JSON_H

#include "buf.h"

void	json_string(struct buf *b, const char *utf8);
void	json_sep(struct buf *b);
void	json_key(struct buf *b, const char *name);
void	json_object_begin(struct buf *b);
void	json_object_end(struct buf *b);
void	json_array_begin(struct buf *b);
void	json_array_end(struct buf *b);
void	json_kv_string(struct buf *b, const char *name, const char *utf8);
void	json_kv_int(struct buf *b, const char *name, long long v);
void	json_kv_bool(struct buf *b, const char *name, int v);
void	json_kv_null(struct buf *b, const char *name);

#endif
