/* base/embed.h: files compiled into the trail binary by tools/embed.sh (the assembler's
 * .incbin): the guest prelude, the TypeScript project template, the SDK tarball. Each table is a
 * generated array of entries plus its length; contents are followed by a NUL byte not counted in
 * their length. */
#ifndef TRAIL_BASE_EMBED_H
#define TRAIL_BASE_EMBED_H

#include <stddef.h>

typedef struct tr_embedded_file {
    const char *path;  /* the name it was embedded under, e.g. "src/index.ts" */
    const char *start; /* contents, [start, end) */
    const char *end;
} tr_embedded_file;

#endif
