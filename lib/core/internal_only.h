#pragma once

// Included by the library's own headers that must never reach a user's
// translation unit (through "constellation/constellation.h"): the data plane's
// insides, the scheduler, the process model's state and launchers.
// //lib:public_header_test compiles a user program with
// CONSTELLATION_PUBLIC_HEADER_TEST defined, so such a header reaching it is a
// compile error whose include chain names the culprit. (libevent, protobuf and
// gRPC headers are caught there by poisoned stand-ins on the include path.)

#ifdef CONSTELLATION_PUBLIC_HEADER_TEST
#error "an internal header reached a user's translation unit through constellation.h (the include chain above names it)"
#endif
