/*
 * log10json.c — see log10json.h: finite as a number, ±inf as "-inf"/"inf",
 * NAN as null.
 */
#include "config.h"

#include <math.h>

#include "lib/log10json.h"

json_t *log10_json(double v)
{
    if (isnan(v))
        return json_null();
    if (isinf(v))
        return json_string(v < 0 ? "-inf" : "inf");
    return json_real(v + 0.0); /* + 0.0: no "-0" */
}
