#pragma once

// JobsService: the gRPC adapter of constellation.v1.Jobs (proto/jobs.proto).
// It checks the caller's role (clients and admins), converts, and hands the
// call to the JobManager; binaries go to the master's BinaryCache through
// IncomingBinaries (`on_receiving` is told of each new one as it begins to
// arrive, to send it on to a node meanwhile). Watch is
// a callback-API stream that reads the job's committed log from the store
// and waits for commits without holding a thread (CommitNotifier).
//
// Thread-safe; everything it points to must outlive the server.

#include <atomic>
#include <functional>
#include "daemon/binary_cache.h"

#include "daemon/master/commit_notifier.h"
#include "daemon/master/incoming_binaries.h"
#include "daemon/master/job_manager.h"
#include "daemon/master/job_store.h"
#include "daemon/metrics/master_metrics.h"
#include "daemon/security/authz.h"
#include "proto/jobs.grpc.pb.h"

namespace constellation::daemon::master {

class JobsService final : public v1::Jobs::WithCallbackMethod_Watch<v1::Jobs::Service> {
 public:
  JobsService(JobManager* jobs, JobStore* store, CommitNotifier* notifier, BinaryCache* cache,
              IncomingBinaries* incoming, std::function<void(const pb::BinaryId&)> on_receiving, bool insecure,
              metrics::MasterMetrics* metrics = nullptr)
      : jobs_(jobs),
        store_(store),
        notifier_(notifier),
        cache_(cache),
        incoming_(incoming),
        on_receiving_(std::move(on_receiving)),
        authz_(insecure),
        metrics_(metrics != nullptr ? *metrics : metrics::MasterMetrics::Unread()) {}

  grpc::Status UploadBinary(grpc::ServerContext* context, grpc::ServerReader<v1::UploadBinaryRequest>* reader,
                            v1::UploadBinaryResponse* response) override;
  // The daemon is stopping: Submit answers UNAVAILABLE from now on; the jobs
  // there are go on. Idempotent, any thread.
  void Drain() { draining_.store(true); }
  grpc::Status HasBinary(grpc::ServerContext* context, const v1::HasBinaryRequest* request,
                         v1::HasBinaryResponse* response) override;
  grpc::Status Submit(grpc::ServerContext* context, const v1::SubmitRequest* request, v1::Job* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                    v1::ListJobsResponse* response) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::CancelJobRequest* request, v1::Job* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteJobRequest* request,
                      v1::DeleteJobResponse* response) override;
  grpc::Status WriteStdin(grpc::ServerContext* context, const v1::WriteStdinRequest* request,
                          v1::WriteStdinResponse* response) override;
  grpc::Status ListNodes(grpc::ServerContext* context, const v1::ListNodesRequest* request,
                         v1::ListNodesResponse* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* Watch(grpc::CallbackServerContext* context,
                                                const v1::WatchRequest* request) override;

 private:
  absl::StatusOr<Identity> Caller(const grpc::ServerContextBase& context, absl::string_view what) const;

  JobManager* const jobs_;
  JobStore* const store_;
  CommitNotifier* const notifier_;
  BinaryCache* const cache_;
  IncomingBinaries* const incoming_;
  const std::function<void(const pb::BinaryId&)> on_receiving_;
  const security::Authorizer authz_;
  std::atomic<bool> draining_{false};  // Drain()
  metrics::MasterMetrics& metrics_;
};

}  // namespace constellation::daemon::master
