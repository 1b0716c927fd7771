/* units: the binary size suffixes users write ("512M", "10MiB", "2G"), one reading for the
 * VM config's sizes and the rate limits. Pure functions; any thread. */
#ifndef TESSERA_BASE_UNITS_H
#define TESSERA_BASE_UNITS_H

/* The power of two a size's suffix names: "" is default_shift; K, M, G, T (either case) are
 * 10, 20, 30, 40, each alone or followed by "B" or "iB". 0 with *shift, or -EINVAL. */
int units_suffix_shift(const char *suffix, unsigned default_shift, unsigned *shift);

#endif
