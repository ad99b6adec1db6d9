/* lex.c — the .kg tokenizer (see lex.h). */
#include "ir/lex.h"
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

void kc_lex_init(kc_lexer *lx, const char *file, const char *src, size_t len) {
  lx->src = lx->p = lx->line_start = src;
  lx->end = src + len;
  lx->file = file;
  lx->line = 1;
}

static int peekc(kc_lexer *lx, int k) { return lx->p + k < lx->end ? (unsigned char)lx->p[k] : 0; }

static bool strchr_punct(int c) { return c && strchr("=:,()[]{}<>@", c) != NULL; }

static bool ident_start(int c) { return isalpha(c) || c == '_'; }
static bool ident_char(int c) { return isalnum(c) || c == '_' || c == '/'; }

kc_tok kc_lex_next(kc_lexer *lx) {
  for (;;) {
    int c = peekc(lx, 0);
    if (c == '\n') {
      lx->p++;
      lx->line++;
      lx->line_start = lx->p;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      lx->p++;
    } else if (c == '#') {
      while (lx->p < lx->end && *lx->p != '\n') lx->p++;
    } else {
      break;
    }
  }
  kc_tok t = {KC_TOK_EOF, lx->p, 0, {lx->file, lx->line, (int)(lx->p - lx->line_start) + 1}};
  if (lx->p >= lx->end) return t;
  int c = peekc(lx, 0);
  const char *s = lx->p;
  if (ident_start(c)) {
    while (ident_char(peekc(lx, 0))) lx->p++;
    /* an output index: name.N */
    if (peekc(lx, 0) == '.' && isdigit(peekc(lx, 1))) {
      lx->p++;
      while (isdigit(peekc(lx, 0))) lx->p++;
    }
    t.kind = KC_TOK_IDENT;
  } else if (isdigit(c) || ((c == '-' || c == '+') && (isdigit(peekc(lx, 1)) || peekc(lx, 1) == '.')) ||
             (c == '.' && isdigit(peekc(lx, 1)))) {
    bool is_float = false;
    if (c == '-' || c == '+') lx->p++;
    while (isdigit(peekc(lx, 0))) lx->p++;
    if (peekc(lx, 0) == '.') {
      is_float = true;
      lx->p++;
      while (isdigit(peekc(lx, 0))) lx->p++;
    }
    if (peekc(lx, 0) == 'e' || peekc(lx, 0) == 'E') {
      int k = 1;
      if (peekc(lx, 1) == '-' || peekc(lx, 1) == '+') k = 2;
      if (isdigit(peekc(lx, k))) {
        is_float = true;
        lx->p += k;
        while (isdigit(peekc(lx, 0))) lx->p++;
      }
    }
    t.kind = is_float ? KC_TOK_FLOAT : KC_TOK_INT;
  } else if (c == '-' && peekc(lx, 1) == 'i' && peekc(lx, 2) == 'n' && peekc(lx, 3) == 'f' &&
             !ident_char(peekc(lx, 4))) {
    lx->p += 4;
    t.kind = KC_TOK_FLOAT;
  } else if (c == '"') {
    lx->p++;
    while (lx->p < lx->end && *lx->p != '"' && *lx->p != '\n') {
      if (*lx->p == '\\' && lx->p + 1 < lx->end) lx->p++;
      lx->p++;
    }
    if (peekc(lx, 0) != '"') {
      t.kind = KC_TOK_ERROR;
      t.s = "unterminated string";
      t.len = 19;
      return t;
    }
    lx->p++;
    t.kind = KC_TOK_STRING;
  } else if (c == '-' && peekc(lx, 1) == '>') {
    lx->p += 2;
    t.kind = KC_TOK_ARROW;
  } else if (c && strchr_punct(c)) {
    lx->p++;
    t.kind = KC_TOK_PUNCT;
  } else {
    lx->p++;
    t.kind = KC_TOK_ERROR;
  }
  t.s = s;
  t.len = (size_t)(lx->p - s);
  return t;
}
