/* Binary size suffixes (units.h). */
#include "base/units.h"

#include <errno.h>
#include <string.h>

int units_suffix_shift(const char *suffix, unsigned default_shift, unsigned *shift)
{
    if (!*suffix) {
        *shift = default_shift;
        return 0;
    }
    switch (*suffix) {
    case 'k':
    case 'K': *shift = 10; break;
    case 'm':
    case 'M': *shift = 20; break;
    case 'g':
    case 'G': *shift = 30; break;
    case 't':
    case 'T': *shift = 40; break;
    default: return -EINVAL;
    }
    if (suffix[1] && strcmp(suffix + 1, "iB") && strcmp(suffix + 1, "B"))
        return -EINVAL;
    return 0;
}
