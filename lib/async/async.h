#pragma once

// Coroutines over channels (docs/async.md): Task, block_on, when_all,
// when_any, sleep_for, select_async and streams. Included by
// constellation.h; async_recv and async_send are members of the channels.

#include "lib/async/block_on.h"
#include "lib/async/select_async.h"
#include "lib/async/sleep.h"
#include "lib/async/stream.h"
#include "lib/async/task.h"
#include "lib/async/when.h"
