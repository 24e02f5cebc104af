#pragma once

// CommitNotifier: what happens after the job store commits. Watchers of a
// job whose log grew are told (they read the new events from the store), and
// nodes whose events are now durable are acknowledged (Node.Ack), so they
// can drop them. The store's commit listener only queues here and never
// blocks: it may run on a thread that holds the job manager's lock. The work
// is done on this notifier's own thread.
//
// Thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "daemon/master/job_records.h"
#include "daemon/master/node_set.h"

namespace constellation::daemon::master {

// A watcher's registration; Cancel (or destruction) stops the calls, and
// waits for one in progress to end.
class Subscription {
 public:
  explicit Subscription(uint64_t job, std::function<void()> fn) : job_(job), fn_(std::move(fn)) {}
  ~Subscription() { Cancel(); }
  uint64_t job() const { return job_; }
  void Notify();
  void Cancel();

 private:
  const uint64_t job_;
  std::mutex mu_;
  std::function<void()> fn_;  // guarded by mu_; empty once cancelled
};

class CommitNotifier {
 public:
  explicit CommitNotifier(NodeSet* nodes);  // `nodes` must outlive this
  ~CommitNotifier();                        // joins the thread

  // The store's listener.
  void OnCommit(const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks);
  // Wakes a job's watchers without a commit (e.g. it ended with nothing new).
  void Poke(uint64_t job);

  // `fn` runs on the notifier's thread each time the job's log grows.
  std::shared_ptr<Subscription> Subscribe(uint64_t job, std::function<void()> fn);

 private:
  void Loop();

  NodeSet* const nodes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<uint64_t> jobs_;                                        // guarded by mu_: to notify
  std::map<std::string, NodeMark> marks_;                          // guarded by mu_: to acknowledge
  std::multimap<uint64_t, std::weak_ptr<Subscription>> watchers_;  // guarded by mu_
  bool stopping_ = false;                                          // guarded by mu_
  std::thread thread_;
};

}  // namespace constellation::daemon::master
