/* config/config_internal.h: the schema that drives the textproto parser; used only in src/config/.
 *
 * A schema is a table of fields, each with a name, a type, the offset of its storage inside the
 * struct being filled, and (for integers) the accepted range or (for messages) the nested schema.
 * The parser knows nothing about trail's settings; config.c holds the tables. */
#ifndef TRAIL_CONFIG_CONFIG_INTERNAL_H
#define TRAIL_CONFIG_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef enum cfg__type {
    CFG__MESSAGE,     /* nested `name { ... }`; storage is the nested struct */
    CFG__INT,         /* int */
    CFG__UINT32,      /* uint32_t */
    CFG__UINT64,      /* uint64_t */
    CFG__BOOL,        /* bool */
    CFG__STRING,      /* char *, owned */
    CFG__STRING_LIST, /* repeated string: char ** at offset, size_t count at len_offset */
    CFG__ENUM,        /* one identifier from enums: int */
    CFG__FLAGS,       /* repeated identifiers from enums, their values OR-ed: uint32_t */
    CFG__MESSAGE_LIST, /* repeated message: an array of elem_size structs at offset (a pointer),
                        * size_t count at len_offset; elements start zeroed */
} cfg__type;

typedef struct cfg__enum_value {
    const char *name;
    int64_t value;
} cfg__enum_value;

typedef struct cfg__schema cfg__schema;

typedef struct cfg__field {
    const char *name;
    cfg__type type;
    size_t offset;             /* of the storage, from the start of the enclosing struct */
    int64_t min, max;          /* integers: accepted range, inclusive */
    const cfg__schema *schema; /* CFG__MESSAGE: the nested message's fields */
    size_t len_offset;         /* CFG__STRING_LIST, CFG__MESSAGE_LIST: offset of the count */
    size_t elem_size;          /* CFG__MESSAGE_LIST: size of one element */
    const cfg__enum_value *enums; /* CFG__ENUM, CFG__FLAGS: the accepted names */
    size_t nenums;
    /* Optional check of a parsed string value; returns NULL when fine, else what was expected
     * (a static string, e.g. "HOST:PORT"). */
    const char *(*check)(const char *value);
} cfg__field;

struct cfg__schema {
    const char *name; /* "server"; "" for the top level */
    const cfg__field *fields;
    size_t nfields;
};

/* Parses text[0..len) against schema into the struct at base. Errors: TR_ECONFIG with err->msg
 * "name:line:col: message". Lines and columns count from 1; columns count bytes. */
/* Frees what the parser allocated in the struct at base (strings, lists, nested messages and
 * message lists), recursively; leaves the freed fields NULL and their counts 0. */
void cfg__free_fields(const cfg__schema *schema, void *base);

int cfg__parse_text(const cfg__schema *schema, void *base, const char *name, const char *text,
                    size_t len, tr_error *err);

#endif
