#include "lib/pool/process_pool.h"

#include <utility>

#include "lib/pool/pool_core.h"
#include "lib/process/code_location.h"

namespace constellation {

using process_internal::CodeLocation;

ProcessPool::ProcessPool(size_t workers, Resources per_worker, PoolOptions options)
    : workers_(workers), core_(std::make_unique<pool_internal::PoolCore>(workers, per_worker, options)) {}

ProcessPool::~ProcessPool() = default;

std::shared_ptr<pool_internal::FutureState> ProcessPool::Submit(pool_internal::Runner runner,
                                                                pool_internal::GenericFn fn, std::string args) {
  auto future = std::make_shared<pool_internal::FutureState>();
  absl::StatusOr<CodeLocation> runner_at = process_internal::LocateCode(reinterpret_cast<const void*>(runner));
  absl::StatusOr<CodeLocation> fn_at = process_internal::LocateCode(reinterpret_cast<const void*>(fn));
  if (!runner_at.ok() || !fn_at.ok()) {
    future->Complete(!runner_at.ok() ? runner_at.status() : fn_at.status());
    return future;
  }
  pool_internal::PendingTask task;
  task.message = pool_internal::MakeTaskMessage(*runner_at, *fn_at, std::move(args));
  task.future = future;
  core_->Submit(std::move(task));
  return future;
}

}  // namespace constellation
