#include "lib/net/channel.h"

#include <cstdio>
#include <cstdlib>

namespace constellation::net {

Peer& ChannelEnd::peer() const {
  if (peer_ == nullptr) {
    std::fprintf(stderr, "constellation: use of a moved-from Sender or Receiver\n");
    std::abort();
  }
  return *peer_;
}

}  // namespace constellation::net
