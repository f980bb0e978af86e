// Include first in every file that uses PostgreSQL headers.
//
// postgres.h is a C header: include it with C linkage, then undo the macros
// of PostgreSQL 15's c.h that do not compile as C++ (it uses
// __builtin_types_compatible_p, a C-only builtin, in type assertions; PG 16
// guards them against C++ itself).
#pragma once

extern "C" {
#include "postgres.h"
}

#undef AssertVariableIsOfType
#define AssertVariableIsOfType(varname, typename) \
  static_assert(true, "type assertion not available in C++")
#undef AssertVariableIsOfTypeMacro
#define AssertVariableIsOfTypeMacro(varname, typename) ((void)0)
