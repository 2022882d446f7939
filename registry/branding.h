/* Platform branding (logo and colours): the checks PATCH
 * /api/v1/platforms/{id} applies to {"branding": {...}} before storing it.
 * Pure functions over jansson values, no host calls: the unit tests link
 * this file alone. */
#ifndef NNO_REGISTRY_BRANDING_H
#define NNO_REGISTRY_BRANDING_H

#include <stddef.h>

#include <jansson.h>

/* The longest logo, as the data: URI's text. */
#define BRANDING_LOGO_MAX 65536
/* WCAG 2 AA for normal text. */
#define BRANDING_MIN_CONTRAST 4.5

/* A colour "#rgb" or "#rrggbb" (hex digits in either case) written as
 * "#rrggbb" in lower case into `out`. 0, or -1 when `s` is not one. */
int branding_colour(const char *s, char out[8]);

/* The WCAG 2 contrast ratio (1 to 21) of two "#rrggbb" colours, from their
 * relative luminance. */
double branding_contrast(const char *a, const char *b);

/* 1 if `s` (`len` bytes) is "data:image/{png|jpeg|gif|webp|svg+xml};base64,"
 * followed by well-formed base64 (padded, at least one group), at most
 * BRANDING_LOGO_MAX bytes in all; else 0. */
int branding_logo_valid(const char *s, size_t len);

/* The size of branding_check()'s `field` buffer. */
#define BRANDING_FIELD_MAX 80

/* Check the value of "branding": an object of the optional members logo,
 * primary, accent, background, foreground, or null. 0 with *out the
 * object to store, colours normalised (OWNERSHIP: the caller decrefs it;
 * NULL for null or {}: nothing set). -1 when refused, with `field`
 * (BRANDING_FIELD_MAX bytes) naming the member at fault ("branding",
 * "branding.logo", "branding.{unknown}"...) and `msg`
 * (`cap` bytes) the problem detail: an unknown member is named, a
 * contrast below BRANDING_MIN_CONTRAST gives the ratio found. */
int branding_check(const json_t *in, json_t **out, char *field, char *msg,
                   size_t cap);

/* The members that differ between two stored brandings (either NULL for
 * none), as a new JSON array of names in a fixed order: what an audit row
 * says changed, never the values (a logo is large). */
json_t *branding_changed(const json_t *before, const json_t *after);

#endif
