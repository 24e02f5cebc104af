#pragma once

// PoolOptions: how a ProcessPool (process_pool.h) treats its tasks.

namespace constellation {

struct PoolOptions {
  // How many workers a task may be handed to, its first run included, when
  // the ones before died running it. At least 1.
  int max_attempts = 3;
};

}  // namespace constellation
