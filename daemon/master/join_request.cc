#include "daemon/master/join_request.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace constellation::daemon::master {

namespace {

bool HostCharsOk(absl::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(c) && c != ':' && c != '.') return false;
    }
    return host.size() > 2;
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return !host.empty();
}

}  // namespace

absl::Status ValidateNodeAddr(const std::string& addr) {
  if (addr.empty()) return absl::InvalidArgumentError("addr: empty");
  if (addr.size() > kMaxJoinAddr) {
    return absl::InvalidArgumentError(absl::StrCat("addr: ", addr.size(), " bytes, at most ", kMaxJoinAddr));
  }
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("addr: not host:port");
  absl::string_view host = absl::string_view(addr).substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(absl::string_view(addr).substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError("addr: the port must be 1-65535");
  }
  if (!HostCharsOk(host)) {
    return absl::InvalidArgumentError("addr: the host must be a name, an IPv4 address or a bracketed IPv6 address");
  }
  if (host == "0.0.0.0" || host == "[::]" || host == "[0:0:0:0:0:0:0:0]") {
    return absl::InvalidArgumentError("addr: a wildcard address cannot be dialled (pass --advertise=HOST:PORT)");
  }
  return absl::OkStatus();
}

absl::StatusOr<JoinSpec> ValidateJoin(const pb::JoinRequest& request) {
  if (absl::Status addr = ValidateNodeAddr(request.addr()); !addr.ok()) return addr;
  if (!request.has_capacity()) return absl::InvalidArgumentError("capacity: missing");
  const pb::Resources& capacity = request.capacity();
  if (capacity.mem() < kMinJoinMem || capacity.mem() > kMaxJoinMem) {
    return absl::InvalidArgumentError(absl::StrCat("capacity.mem: ", capacity.mem(), " bytes; from 1 MiB to 1 PiB"));
  }
  if (!std::isfinite(capacity.cpu()) || capacity.cpu() < kMinJoinCpu || capacity.cpu() > kMaxJoinCpu) {
    return absl::InvalidArgumentError(absl::StrCat("capacity.cpu: ", capacity.cpu(), "; from 0.01 to 4096 cores"));
  }
  return JoinSpec{request.addr(), Resources{capacity.mem(), capacity.cpu()}};
}

}  // namespace constellation::daemon::master
