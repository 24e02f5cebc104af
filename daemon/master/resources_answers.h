#pragma once

// What binaries answered to the resources query (NodeService::QueryResources:
// the root's init(Resources), for a job submitted without resources), so that
// the next submission of the same binary with the same argv and environment is
// placed without running the binary once more: that query is a whole exec of
// the program on a node, the largest step of a cached deploy after the launch
// itself.
//
// Keyed by the SHA-256 of the whole query (the binary's SHA-256, argv, env):
// a key is 32 bytes however long the argv. At most `capacity` answers; the
// oldest goes first. Only successful answers are kept. Memory only: a
// restarted master asks again. Thread-safe.

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "lib/core/resources.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon::master {

class ResourcesAnswers {
 public:
  explicit ResourcesAnswers(size_t capacity = 1024) : capacity_(capacity) {}

  std::optional<Resources> Find(const pb::ResourcesQuery& query);
  void Remember(const pb::ResourcesQuery& query, const Resources& answer);

 private:
  static std::string KeyOf(const pb::ResourcesQuery& query);

  const size_t capacity_;
  std::mutex mu_;
  std::map<std::string, Resources> answers_;  // guarded by mu_
  std::deque<std::string> order_;             // guarded by mu_: keys, oldest first
};

}  // namespace constellation::daemon::master
