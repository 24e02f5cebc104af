#pragma once

// MasterCalls: a node relay's link to the master for asynchronous calls of
// gRPC's callback API (SpawnRelay's Master.Spawn, WatchRelay's
// Master.Watch): the master's address and stub, the calls in flight, and
// their cancellation. A relay makes its call (a struct with a
// `grpc::ClientContext context` member and whatever else it needs), Start()s
// it here to get the stub to start it on, and Finish()es it at the end of its
// callback; what the request holds and what the reply means stay the relay's.
//
// Ownership: the calls in flight are owned jointly by this object and their
// callbacks; every stub made is kept until Shutdown (see stubs_).
// Threading: any method from any thread. Shutdown() (and the destructor)
// cancels the calls in flight and waits until each was Finish()ed: no
// callback touches the relay after it returns, and later Start()s are
// refused.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

class MasterCalls {
 public:
  using Stub = std::shared_ptr<pb::Master::Stub>;
  // `credentials`: this node's, for its calls to the master.
  explicit MasterCalls(std::shared_ptr<grpc::ChannelCredentials> credentials);
  ~MasterCalls();  // Shutdown()
  MasterCalls(const MasterCalls&) = delete;
  MasterCalls& operator=(const MasterCalls&) = delete;

  // Where the master is (AttachRequest.master_addr). A new address cancels
  // the calls waiting for the old one; the same address changes nothing.
  void SetMaster(const std::string& addr);

  // Counts `call`, filled in, as in flight and gives the stub to start it on;
  // UNAVAILABLE (the call is not counted) after Shutdown or before any
  // master was set.
  template <typename Call>
  absl::StatusOr<Stub> Start(const std::shared_ptr<Call>& call) {
    return StartCall(std::shared_ptr<grpc::ClientContext>(call, &call->context));
  }

  // Takes and releases the lock: a callback calls it before it reads its
  // call, which Start()'s caller filled in before Start() took the lock
  // (gRPC's hand-over between the threads is invisible to TSan).
  void SeeStarted() const;

  // The end of `call`'s callback, after its reply was given: it is no longer
  // in flight, and this drops the reference to it (and its context) here,
  // not when gRPC drops the callback: see stubs_.
  template <typename Call>
  void Finish(std::shared_ptr<Call> call) {
    grpc::ClientContext* context = &call->context;
    FinishCall(std::shared_ptr<grpc::ClientContext>(std::move(call), context));
  }

  // Cancels every call in flight (their callbacks see CANCELLED).
  void CancelAll();

  // Refuses new calls, cancels those in flight and waits until each was
  // Finish()ed. Call it while the callbacks' targets still work.
  void Shutdown();

  size_t in_flight() const;

 private:
  // A call in flight, by its context; the pointer shares ownership of the whole call.
  using Context = std::shared_ptr<grpc::ClientContext>;
  absl::StatusOr<Stub> StartCall(Context call);
  void FinishCall(Context call);
  static void Cancel(const std::set<Context>& calls);

  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string addr_ ABSL_GUARDED_BY(mu_);
  Stub master_ ABSL_GUARDED_BY(mu_);
  // Every stub made (one per master address), kept until Shutdown: the last
  // reference to a channel must not be dropped on the callback API's own
  // threads (gRPC 1.51 then shuts its callback queue down from one of its
  // threads and crashes; grpc/grpc#32584), as a call's context would drop
  // it if the link did not hold it.
  std::vector<Stub> stubs_ ABSL_GUARDED_BY(mu_);
  std::set<Context> calls_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace constellation::daemon
