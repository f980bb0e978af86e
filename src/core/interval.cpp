#include "core/interval.hpp"

namespace shard_coordinator {

namespace {

constexpr std::int64_t kDayUs = INT64_C(86400000000);

}  // namespace

bool interval_to_us(std::int32_t months, std::int32_t days,
                    std::int64_t time_us, std::int64_t *out) noexcept {
  std::int64_t months_us = 0;
  std::int64_t days_us = 0;
  std::int64_t sum = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(months), 30 * kDayUs,
                             &months_us) ||
      __builtin_mul_overflow(static_cast<std::int64_t>(days), kDayUs,
                             &days_us) ||
      __builtin_add_overflow(months_us, days_us, &sum) ||
      __builtin_add_overflow(sum, time_us, &sum))
    return false;
  *out = sum;
  return true;
}

bool interval_is_negative(std::int32_t months, std::int32_t days,
                          std::int64_t time_us) noexcept {
  std::int64_t us = 0;
  if (interval_to_us(months, days, time_us, &us)) return us < 0;
  if (months != 0) return months < 0;
  if (days != 0) return days < 0;
  return time_us < 0;
}

}  // namespace shard_coordinator
