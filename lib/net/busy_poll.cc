#include "lib/net/busy_poll.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/strings/numbers.h"

namespace constellation {
namespace {

constexpr int64_t kUnset = -1;
constexpr int64_t kMaxSpinNs = 1'000'000'000;
std::atomic<int64_t> g_spin_ns{kUnset};

int64_t Clamp(int64_t ns) { return ns < 0 ? 0 : (ns > kMaxSpinNs ? kMaxSpinNs : ns); }

// CONSTELLATION_BUSY_POLL_US, or zero when unset or not a number.
int64_t FromEnvironment() {
  const char* text = std::getenv("CONSTELLATION_BUSY_POLL_US");
  int64_t us = 0;
  if (text == nullptr || !absl::SimpleAtoi(absl::string_view(text), &us)) return 0;
  return Clamp(us > kMaxSpinNs / 1000 ? kMaxSpinNs : us * 1000);
}

}  // namespace

void set_busy_poll(absl::Duration spin) {
  g_spin_ns.store(Clamp(absl::ToInt64Nanoseconds(spin)), std::memory_order_relaxed);
}

absl::Duration busy_poll() { return absl::Nanoseconds(net::BusyPollNs()); }

namespace net {

int64_t BusyPollNs() {
  int64_t ns = g_spin_ns.load(std::memory_order_relaxed);
  if (ns != kUnset) return ns;
  // First use: the environment decides, unless set_busy_poll got there first.
  int64_t expected = kUnset;
  g_spin_ns.compare_exchange_strong(expected, FromEnvironment(), std::memory_order_relaxed);
  return g_spin_ns.load(std::memory_order_relaxed);
}

}  // namespace net
}  // namespace constellation
