#pragma once

// The records the master's job store keeps (daemon/master/job_store.h):
// plain values, copied freely.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proto/jobs.pb.h"

namespace constellation::daemon::master {

namespace v1 = ::constellation::v1;

// How long a finished job is kept when its spec says 0 (ttl_after_finished_ms).
inline constexpr int64_t kDefaultJobTtlMs = 7 * 24 * 3600 * 1000ll;

// A job as the master keeps it: the public view plus what only the master
// needs.
struct JobRecord {
  uint64_t id = 0;
  // The public view: id (decimal string of `id`), spec, state, reason,
  // exit_code, owner, times. `processes` is not stored here (see
  // ProcessRecord); last_seq is not stored.
  v1::Job job;
  std::string secret;  // the job's data-plane secret (32 bytes)
};

struct ProcessRecord {
  uint64_t job = 0;
  v1::JobProcess process;  // keyed by (job, process.pid)
};

// How far the master has durably stored a node's event stream.
struct NodeMark {
  std::string node;  // the node's address
  std::string incarnation;
  uint64_t seq = 0;
};

struct JobFilter {
  std::vector<v1::JobState> states;           // any of; empty: all
  std::map<std::string, std::string> labels;  // all must match
  std::string owner;                          // empty: every owner
  uint32_t page_size = 100;                   // caller clamps to [1, 1000]
  std::string page_token;                     // opaque, from the previous page
};

struct JobPage {
  std::vector<JobRecord> jobs;
  std::string next_page_token;  // empty: no more
};

}  // namespace constellation::daemon::master
