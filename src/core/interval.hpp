// Intervals in microseconds: the one converter that every setting passes
// through (configure's arguments, the stored settings). Plain C++ with no
// PostgreSQL headers: PostgreSQL's interval is (months, days, microseconds).
#pragma once

#include <cstdint>

namespace shard_coordinator {

// months * 30 days + days * 24 hours + time_us, in microseconds; false if
// that does not fit in 64 bits.
bool interval_to_us(std::int32_t months, std::int32_t days,
                    std::int64_t time_us, std::int64_t *out) noexcept;

// Whether such an interval is negative, also when it does not fit: the sign
// of its largest unit that is not zero.
bool interval_is_negative(std::int32_t months, std::int32_t days,
                          std::int64_t time_us) noexcept;

}  // namespace shard_coordinator
