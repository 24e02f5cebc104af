#pragma once

// Busy-polling, opt-in (never the default): a thread about to sleep in a
// channel's recv (or in select) first spins up to this long, checking the
// socket or the queue without sleeping, then sleeps as usual. It trades CPU
// for latency: on a machine where waking a sleeping thread costs tens of
// microseconds, a reply that arrives within the spin is seen at once.
//
// The environment variable CONSTELLATION_BUSY_POLL_US=N (microseconds, read
// once, at the first use) sets it for the process; set_busy_poll overrides it.
//
// Threading: any thread, any time; a recv already spinning keeps its budget.

#include "absl/time/time.h"

namespace constellation {

// How long a receiver spins before sleeping; zero (the default) turns it off.
// Negative durations count as zero; at most one second is used.
void set_busy_poll(absl::Duration spin);
absl::Duration busy_poll();

namespace net {
// busy_poll() in nanoseconds, for the data plane's hot paths (one relaxed load
// after the first call).
int64_t BusyPollNs();
}  // namespace net

}  // namespace constellation
