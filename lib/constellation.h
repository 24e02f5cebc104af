#pragma once

// Constellation for C++: the one header users include, as
//   #include "constellation/constellation.h"
// with a dependency on //lib:constellation (@constellation//lib:constellation).
// Everything is in namespace constellation; see README.md and docs/.

#include "lib/async/async.h"
#include "lib/core/codec.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "lib/net/channel.h"
#include "lib/net/select.h"
#include "lib/pool/process_pool.h"
#include "lib/process/monitors.h"
#include "lib/process/runtime.h"
#include "lib/process/spawn.h"
