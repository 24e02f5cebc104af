// The seeds' example: ten workers each greet and send back index*100; the
// top process adds them up and prints "total 4500!".
#include <iostream>
#include <string>

#include "constellation/constellation.h"

using namespace constellation;

struct WorkerArg {
  size_t index = 0;
  std::string greeting;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(index, greeting);
  }
};

void worker(Pid parent, WorkerArg arg) {
  std::cout << arg.greeting << std::endl;
  Sender<size_t> sender(parent);
  sender.send(arg.index * 100).IgnoreError();  // the parent reports a missing value
}

int main() {
  init(Resources());
  size_t total = 0;
  for (size_t index = 0; index < 10; ++index) {
    WorkerArg arg{index, "hello worker " + std::to_string(index) + "!"};
    absl::StatusOr<Pid> pid = spawn(Resources(), worker, arg);
    if (!pid.ok()) {
      std::cerr << "Out of resources! " << pid.status() << std::endl;
      return 1;
    }
    absl::StatusOr<size_t> value = Receiver<size_t>(*pid).recv();
    if (!value.ok()) {
      std::cerr << "worker " << index << " failed: " << value.status() << std::endl;
      return 1;
    }
    total += *value;
  }
  std::cout << "total " << total << "!" << std::endl;
}
