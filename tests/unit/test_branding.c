/* Unit tests for registry/branding.c: colours, WCAG contrast, logo data:
 * URIs and the checks of a branding object. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "branding.h"

static void colours(void **state) {
  (void)state;
  char c[8];
  assert_int_equal(branding_colour("#1A73E8", c), 0);
  assert_string_equal(c, "#1a73e8");
  assert_int_equal(branding_colour("#fA0", c), 0);
  assert_string_equal(c, "#ffaa00");
  const char *bad[] = {"", "#", "1a73e8", "#1a73e", "#1a73e8f", "#ggg",
                       "#12 456", "red", "#1a73e8\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(branding_colour(bad[i], c), -1);
}

static void contrast(void **state) {
  (void)state;
  /* The WCAG extremes and known pairs. */
  assert_true(fabs(branding_contrast("#000000", "#ffffff") - 21.0) < 1e-9);
  assert_true(fabs(branding_contrast("#ffffff", "#000000") - 21.0) < 1e-9);
  assert_true(fabs(branding_contrast("#777777", "#777777") - 1.0) < 1e-9);
  /* #767676 on white is the classic 4.54:1; #777777 just fails (4.48). */
  double r = branding_contrast("#767676", "#ffffff");
  assert_true(r > 4.53 && r < 4.55);
  r = branding_contrast("#777777", "#ffffff");
  assert_true(r > 4.47 && r < 4.49);
}

static void logos(void **state) {
  (void)state;
  const char *good[] = {"data:image/png;base64,iVBORw0KGgo=",
                        "data:image/jpeg;base64,/9j/4AAQ",
                        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
                        "data:image/webp;base64,UklGRg==",
                        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal(branding_logo_valid(good[i], strlen(good[i])), 1);
  const char *bad[] = {
      "data:image/png;base64,",           /* empty */
      "data:image/png;base64,abc",        /* not a multiple of 4 */
      "data:image/png;base64,ab=c",       /* '=' inside */
      "data:image/png;base64,a===",       /* three '=' */
      "data:image/png;base64,ab c",       /* space */
      "data:image/bmp;base64,AAAA",       /* type */
      "data:image/png,AAAA",              /* not base64 */
      "data:text/html;base64,AAAA",       /* not an image */
      "https://example.com/logo.png",     /* not a data: URI */
      "data:image/svg+xml;utf8,<svg/>",   /* not base64 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(branding_logo_valid(bad[i], strlen(bad[i])), 0);
  /* The bound is on the whole text: 64 KiB passes, one group more fails. */
  size_t head = strlen("data:image/png;base64,");
  size_t n = BRANDING_LOGO_MAX - (BRANDING_LOGO_MAX - head) % 4;
  char *big = malloc(BRANDING_LOGO_MAX + 5);
  assert_non_null(big);
  memcpy(big, "data:image/png;base64,", head);
  memset(big + head, 'A', BRANDING_LOGO_MAX + 4 - head);
  assert_int_equal(branding_logo_valid(big, n), 1);
  assert_int_equal(branding_logo_valid(big, n + 4), 0);
  free(big);
}

/* branding_check on `text`: the return code, and the field and message. */
static int check(const char *text, json_t **out, char *field, char *msg) {
  json_t *in = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(in);
  int rc = branding_check(in, out, field, msg, 256);
  json_decref(in);
  return rc;
}

static void objects(void **state) {
  (void)state;
  json_t *out;
  char field[BRANDING_FIELD_MAX], msg[256];
  assert_int_equal(check("null", &out, field, msg), 0);
  assert_null(out);
  assert_int_equal(check("{}", &out, field, msg), 0);
  assert_null(out);
  assert_int_equal(check("{\"primary\": \"#1A73E8\", \"accent\": \"#fA0\","
                         " \"background\": \"#fff\", \"foreground\": "
                         "\"#111\"}",
                         &out, field, msg),
                   0);
  char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(s, "{\"accent\":\"#ffaa00\",\"background\":\"#ffffff\","
                         "\"foreground\":\"#111111\",\"primary\":\"#1a73e8\"}");
  free(s);
  json_decref(out);

  assert_int_equal(check("[]", &out, field, msg), -1);
  assert_string_equal(field, "branding");
  assert_string_equal(msg, "field \"branding\": expected an object or null, "
                           "got an array");
  assert_int_equal(check("{\"colour\": \"#000\"}", &out, field, msg), -1);
  assert_string_equal(field, "branding.colour");
  assert_non_null(strstr(msg, "\"branding.colour\": unknown field"));
  assert_int_equal(check("{\"x\\\"y\\n\": 1}", &out, field, msg), -1);
  assert_string_equal(field, "branding.x?y?");
  assert_int_equal(check("{\"accent\": 3}", &out, field, msg), -1);
  assert_string_equal(field, "branding.accent");
  assert_string_equal(msg, "field \"branding.accent\": expected a string, "
                           "got a number");
  assert_int_equal(check("{\"accent\": \"blue\"}", &out, field, msg), -1);
  assert_string_equal(msg, "field \"branding.accent\": expected a colour "
                           "\"#rrggbb\" or \"#rgb\", got \"blue\"");
  assert_int_equal(check("{\"logo\": \"data:image/png;base64,abc\"}", &out,
                         field, msg),
                   -1);
  assert_string_equal(field, "branding.logo");

  /* Contrast: the ratio found is in the message, rounded down. */
  assert_int_equal(check("{\"background\": \"#ffffff\", \"foreground\": "
                         "\"#777777\"}",
                         &out, field, msg),
                   -1);
  assert_string_equal(field, "branding.foreground");
  assert_string_equal(msg, "field \"branding.foreground\": the contrast of "
                           "#777777 on #ffffff is 4.47:1, at least 4.5:1 is "
                           "needed");
  assert_int_equal(check("{\"background\": \"#fff\", \"foreground\": "
                         "\"#767676\"}",
                         &out, field, msg),
                   0);
  json_decref(out);
  /* One of the pair alone is not checked. */
  assert_int_equal(check("{\"foreground\": \"#777777\"}", &out, field, msg),
                   0);
  json_decref(out);
  assert_int_equal(check("{\"primary\": \"#ffcc00\"}", &out, field, msg), -1);
  assert_string_equal(field, "branding.primary");
  assert_string_equal(msg, "field \"branding.primary\": the contrast of white "
                           "text on #ffcc00 is 1.51:1, at least 4.5:1 is "
                           "needed");
}

static void changed(void **state) {
  (void)state;
  json_t *a = json_pack("{s:s, s:s}", "logo", "data:image/png;base64,AAAA",
                        "primary", "#000000");
  json_t *b = json_pack("{s:s, s:s}", "primary", "#000000", "accent",
                        "#ffffff");
  json_t *d = branding_changed(a, b);
  char *s = json_dumps(d, JSON_COMPACT);
  assert_string_equal(s, "[\"logo\",\"accent\"]");
  free(s);
  json_decref(d);
  d = branding_changed(NULL, a);
  s = json_dumps(d, JSON_COMPACT);
  assert_string_equal(s, "[\"logo\",\"primary\"]");
  free(s);
  json_decref(d);
  d = branding_changed(a, a);
  assert_int_equal(json_array_size(d), 0);
  json_decref(d);
  json_decref(a);
  json_decref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(colours), cmocka_unit_test(contrast),
      cmocka_unit_test(logos),   cmocka_unit_test(objects),
      cmocka_unit_test(changed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
