/* utf8.h - one UTF-8 validator for everything that must tell text from
 * bytes: dead letters, JSON output, ringctl's printing of state. */
#ifndef RM_UTF8_H
#define RM_UTF8_H

#include <stddef.h>

/* The length of the valid UTF-8 character at p (n > 0 bytes there): 1 for
 * ASCII, 2 to 4, or 0 when invalid (not a lead byte, a continuation byte
 * missing, an overlong form, a surrogate, past U+10FFFF). */
size_t utf8_len(const unsigned char *p, size_t n);

/* True when the n bytes at p are valid UTF-8 with no control byte (0x00 to
 * 0x1f, 0x7f): text that prints on one line as it is. */
int utf8_is_line(const void *p, size_t n);

#endif
