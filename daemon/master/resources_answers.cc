#include "daemon/master/resources_answers.h"

#include <openssl/sha.h>

namespace constellation::daemon::master {

std::string ResourcesAnswers::KeyOf(const pb::ResourcesQuery& query) {
  // Deterministic within a process: the query has no map fields.
  std::string bytes = query.SerializeAsString();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::optional<Resources> ResourcesAnswers::Find(const pb::ResourcesQuery& query) {
  std::string key = KeyOf(query);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = answers_.find(key);
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

void ResourcesAnswers::Remember(const pb::ResourcesQuery& query, const Resources& answer) {
  if (capacity_ == 0) return;
  std::string key = KeyOf(query);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = answers_.insert_or_assign(key, answer);
  if (!added) return;
  order_.push_back(it->first);
  if (order_.size() > capacity_) {
    answers_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace constellation::daemon::master
