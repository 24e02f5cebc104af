#include "lib/process/data_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace constellation::process_internal {

absl::StatusOr<DataPort> BindDataPort(uint32_t ipv4) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::string message = absl::StrCat("cannot make a data-plane socket: ", std::strerror(errno));
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      return absl::ResourceExhaustedError(message);
    }
    return absl::UnavailableError(message);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(ipv4);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status status = absl::UnavailableError(absl::StrCat("cannot bind a data-plane port: ", std::strerror(errno)));
    close(fd);
    return status;
  }
  uint32_t nonce = 0;
  while (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
  }
  return DataPort{fd, Pid::FromIpv4(ntohl(addr.sin_addr.s_addr), ntohs(addr.sin_port), nonce)};
}

}  // namespace constellation::process_internal
