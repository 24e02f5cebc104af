#include "lib/process/proto_convert.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace constellation::internal {

pb::Pid ToProto(const Pid& pid) {
  pb::Pid out;
  out.set_addr(std::string(pid.addr().begin(), pid.addr().end()));
  out.set_port(pid.port());
  out.set_nonce(pid.nonce());
  return out;
}

pb::Resources ToProto(const Resources& resources) {
  pb::Resources out;
  out.set_mem(resources.mem);
  out.set_cpu(resources.cpu);
  return out;
}

absl::StatusOr<Pid> FromProto(const pb::Pid& pid) {
  Pid::Address addr{};
  if (pid.addr().size() != addr.size() || pid.port() > 0xffff) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed pid: ", pid.addr().size(), "-byte address, port ", pid.port()));
  }
  std::copy(pid.addr().begin(), pid.addr().end(), addr.begin());
  return Pid(addr, static_cast<uint16_t>(pid.port()), pid.nonce());
}

Resources FromProto(const pb::Resources& resources) { return Resources{resources.mem(), resources.cpu()}; }

}  // namespace constellation::internal
