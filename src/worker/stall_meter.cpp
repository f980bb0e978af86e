#include "worker/stall_meter.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "core/clock.hpp"

namespace shard_coordinator {

namespace {

void *meter_main(void *arg) {
  auto *meter = static_cast<StallMeter *>(arg);
  std::int64_t planned = mono_now_us() + StallMeter::kTickUs;
  for (;;) {
    timespec until{};
    until.tv_sec = planned / 1000000;
    until.tv_nsec = (planned % 1000000) * 1000;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) !=
           0) {
    }
    std::int64_t now = mono_now_us();
    meter->tick(planned, now);
    planned = now + StallMeter::kTickUs;
  }
  return nullptr;
}

}  // namespace

void StallMeter::tick(std::int64_t planned, std::int64_t now) noexcept {
  std::int64_t late = now - planned;
  if (late > kToleranceUs) {
    // Published before the tick itself: whoever sees the new tick sees the
    // stall too.
    pending_end_.store(now, std::memory_order_relaxed);
    pending_.fetch_add(late + kTickUs, std::memory_order_release);
  }
  last_tick_.store(now, std::memory_order_release);
}

bool StallMeter::start() noexcept {
  last_tick_.store(mono_now_us(), std::memory_order_release);
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) return false;
  pthread_t thread;
  pthread_attr_t attr;
  bool ok = pthread_attr_init(&attr) == 0;
  if (ok) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    ok = pthread_create(&thread, &attr, meter_main, this) == 0;
    pthread_attr_destroy(&attr);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

bool StallMeter::caught_up(std::int64_t now) const noexcept {
  return now - last_tick_.load(std::memory_order_acquire) <=
         kTickUs + kToleranceUs;
}

std::int64_t StallMeter::take(std::int64_t *stall_end) noexcept {
  std::int64_t stall = pending_.exchange(0, std::memory_order_acquire);
  *stall_end = pending_end_.load(std::memory_order_relaxed);
  return stall;
}

}  // namespace shard_coordinator
