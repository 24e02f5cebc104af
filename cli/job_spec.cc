#include "cli/job_spec.h"

#include <random>

#include "absl/strings/str_format.h"
#include "cli/env_filter.h"

namespace constellation::cli {

v1::JobSpec MakeJobSpec(const Args& args, const std::string& binary_path, const v1::BinaryRef& binary, char** environ,
                        const std::string& request_id) {
  v1::JobSpec spec;
  *spec.mutable_binary() = binary;
  std::string name = binary_path.substr(binary_path.rfind('/') + 1);
  spec.add_argv(name);
  for (const std::string& arg : args.program_args) spec.add_argv(arg);
  for (const std::string& e : ForwardedEnvironment(environ, args.env)) spec.add_env(e);
  for (const auto& [key, value] : args.labels) (*spec.mutable_labels())[key] = value;
  spec.set_request_id(request_id);
  spec.set_ttl_after_finished_ms(absl::ToInt64Milliseconds(args.ttl));
  spec.set_attach_stdin(!args.detach);
  spec.set_name(name);
  return spec;
}

std::string NewRequestId() {
  std::random_device random;  // /dev/urandom (getrandom) on Linux
  std::string id;
  for (int i = 0; i < 4; ++i) id += absl::StrFormat("%08x", random());
  return id;
}

}  // namespace constellation::cli
