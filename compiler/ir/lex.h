/* lex.h — the .kg tokenizer.  Whitespace and newlines are insignificant;
 * `#` starts a comment to the end of the line.  Names may contain `/` (TF
 * name scopes) and end in `.N` to pick an output. */
#ifndef KILN_LEX_H
#define KILN_LEX_H

#include "ir/diag.h"
#include <stddef.h>

typedef enum kc_tok_kind {
  KC_TOK_EOF, KC_TOK_IDENT, KC_TOK_INT, KC_TOK_FLOAT, KC_TOK_STRING, KC_TOK_PUNCT, KC_TOK_ARROW,
  KC_TOK_ERROR
} kc_tok_kind;

typedef struct kc_tok {
  kc_tok_kind kind;
  const char *s; /* points into the source */
  size_t len;
  kc_loc loc;
} kc_tok;

typedef struct kc_lexer {
  const char *src, *p, *end;
  const char *file;
  int line;
  const char *line_start;
} kc_lexer;

void kc_lex_init(kc_lexer *lx, const char *file, const char *src, size_t len);
/* The next token; KC_TOK_ERROR for a character that starts no token. */
kc_tok kc_lex_next(kc_lexer *lx);

#endif
