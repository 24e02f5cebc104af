#pragma once

// IncomingBinaries: the binaries the master is receiving now
// (Jobs.UploadBinary), readable while they arrive. A node is sent a binary
// while the client still sends it (a Follower reads each byte once the master
// has written and hashed it), so there is no second, sequential upload; and a
// binary that two clients send at once is received once (the second waits for
// the first, and sends its own bytes only if the first fails).
//
// Memory: nothing is buffered per upload; a follower reads what was written
// from the file (page cache) into its caller's buffer.
//
// A follower never hands on more than what the master received, and ends
// (Read returns 0) only once the master has checked the whole binary against
// its SHA-256 and stored it; if that check fails, or the client goes away or
// stalls, it gets an error instead, and the node it feeds drops the upload.
//
// Thread-safe. The cache must outlive this, and this its Receivings and
// Followers.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/master/node_client.h"

namespace constellation::daemon::master {

class IncomingBinaries {
 private:
  struct State;

 public:
  // A follower or a second upload gives up on an upload that made no
  // progress for `stall_timeout`.
  explicit IncomingBinaries(BinaryCache* cache, absl::Duration stall_timeout = absl::Seconds(60))
      : cache_(cache), stall_timeout_(stall_timeout) {}

  // One upload being received, used by one thread. Destroying it unfinished
  // abandons it: nothing is stored, followers get an error.
  class Receiving {
   public:
    Receiving(IncomingBinaries* owner, std::shared_ptr<State> state, std::unique_ptr<BinaryCache::Upload> upload)
        : owner_(owner), state_(std::move(state)), upload_(std::move(upload)) {}
    ~Receiving();
    Receiving(const Receiving&) = delete;
    Receiving& operator=(const Receiving&) = delete;

    absl::Status Append(absl::string_view data);  // BinaryCache::Upload::Append, then followers may read it
    absl::Status Finish();                        // BinaryCache::Upload::Finish, then followers end

   private:
    void End(absl::Status outcome);

    IncomingBinaries* const owner_;
    const std::shared_ptr<State> state_;
    std::unique_ptr<BinaryCache::Upload> upload_;
    bool ended_ = false;
  };

  // Reads an upload in progress from its start (ChunkSource). Used by one thread.
  class Follower final : public ChunkSource {
   public:
    Follower(std::shared_ptr<State> state, absl::Duration stall_timeout)
        : state_(std::move(state)), stall_timeout_(stall_timeout) {}
    absl::StatusOr<size_t> Read(char* buf, size_t max) override;
    // Waits for the upload's end: OK once the binary is stored.
    absl::Status WaitStored();

   private:
    const std::shared_ptr<State> state_;
    const absl::Duration stall_timeout_;
    uint64_t offset_ = 0;
  };

  // Starts receiving `id` into the cache (BinaryCache::Begin's errors). When
  // another upload of `id` is in progress, waits for it first, and answers
  // null if it stored the binary: there is nothing to receive.
  absl::StatusOr<std::unique_ptr<Receiving>> Receive(const pb::BinaryId& id);

  // A reader of `id` while it arrives; null when it is not being received.
  std::unique_ptr<Follower> Follow(const pb::BinaryId& id);

 private:
  // Ends `state` as stored (ok) or failed, wakes who waits on it and takes
  // it out of the map.
  void Settle(const std::shared_ptr<State>& state, const absl::Status& outcome);
  void Remove(const std::shared_ptr<State>& state);

  BinaryCache* const cache_;
  const absl::Duration stall_timeout_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<State>> receiving_ ABSL_GUARDED_BY(mu_);  // by SHA-256
};

}  // namespace constellation::daemon::master
