// A user program compiled the way users compile theirs, except that the
// include path starts with poisoned stand-ins for libevent's, protobuf's and
// gRPC's headers (lib/poisoned_includes/) and CONSTELLATION_PUBLIC_HEADER_TEST
// is defined, which the library's internal headers (lib/core/internal_only.h)
// turn into an error. So this file compiles only while the public header
// shows the API alone. What it runs is beside the point; it exercises the
// API's templates so their bodies are compiled too.

#include "constellation/constellation.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

struct Point {
  int x = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, label);
  }
};

void Worker(constellation::Pid parent, int n, std::vector<std::string> words) {
  constellation::Sender<Point> to_parent(parent);
  to_parent.send(Point{n, words.empty() ? "" : words[0]}).IgnoreError();
}

// Never called (it would need init()): compiled, so every template is instantiated.
[[maybe_unused]] void UseEverything() {
  constellation::init(constellation::Resources{.mem = 64 * constellation::kMiB, .cpu = 0.5});
  constellation::Pid self = constellation::pid();
  constellation::Resources mine = constellation::resources();
  absl::StatusOr<constellation::Pid> child = constellation::spawn(mine, Worker, 3, std::vector<std::string>{"three"});
  absl::StatusOr<constellation::Pid> maybe = constellation::try_spawn(
      mine,
      [](constellation::Pid parent, std::string greeting) {
        std::printf("%s %s\n", greeting.c_str(), parent.to_string().c_str());
      },
      std::string("hello"));
  if (!child.ok() || !maybe.ok()) return;
  constellation::Receiver<Point> points(*child);
  constellation::Sender<std::map<std::string, int>> counts(*child);
  absl::StatusOr<Point> point = points.recv_for(absl::Seconds(1));
  absl::StatusOr<size_t> which = constellation::select(
      {
          constellation::on_recv(points, [](absl::StatusOr<Point> p) { (void)p; }),
          constellation::on_send(counts, std::map<std::string, int>{{"a", 1}}, [](absl::Status s) { (void)s; }),
      },
      absl::Milliseconds(10));
  constellation::ProcessPool pool(2, mine);
  constellation::Future<int> squared = pool.submit([](int x) { return x * x; }, 7);
  absl::StatusOr<int> square = squared.get();
  (void)self;
  (void)point;
  (void)square;
  (void)which;
  (void)points.try_recv();
  (void)counts.try_send({});
  (void)counts.remote();
  constellation::Monitor down = constellation::monitor(*child);
  (void)constellation::select({constellation::on_down(down, [](constellation::Down d) { (void)d.to_string(); })});
}

}  // namespace

int main() {
  // The codec needs no runtime: a round trip through it.
  Point in{7, "seven"};
  absl::StatusOr<Point> out = constellation::decode<Point>(constellation::encode(in));
  if (!out.ok() || out->x != 7 || out->label != "seven") {
    std::fprintf(stderr, "codec round trip failed\n");
    return 1;
  }
  absl::StatusOr<uint64_t> mem = constellation::parse_mem("512 MiB");
  if (!mem.ok() || *mem != 512 * constellation::kMiB) return 1;
  std::printf("the public header compiled with libevent, protobuf, gRPC and the internals out of reach\n");
  return 0;
}
