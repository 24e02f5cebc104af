// Master.Join's checks: what a hostile node may send is refused by name.
#include "daemon/master/join_request.h"

#include <limits>

#include "gtest/gtest.h"

namespace constellation::daemon::master {
namespace {

pb::JoinRequest Request(const std::string& addr, uint64_t mem = 1ull << 30, double cpu = 2) {
  pb::JoinRequest request;
  request.set_addr(addr);
  request.mutable_capacity()->set_mem(mem);
  request.mutable_capacity()->set_cpu(cpu);
  return request;
}

TEST(JoinRequestTest, AcceptsWhatAMasterCanDial) {
  for (const char* addr : {"10.0.0.2:9999", "node-3.cluster.local:1", "localhost:65535", "[fe80::1]:9999"}) {
    absl::StatusOr<JoinSpec> spec = ValidateJoin(Request(addr));
    ASSERT_TRUE(spec.ok()) << addr << ": " << spec.status();
    EXPECT_EQ(spec->addr, addr);
    EXPECT_EQ(spec->capacity.mem, 1ull << 30);
    EXPECT_EQ(spec->capacity.cpu, 2);
  }
}

TEST(JoinRequestTest, RefusesBadAddresses) {
  for (const std::string& addr :
       {std::string(), std::string("10.0.0.2"), std::string("10.0.0.2:0"), std::string("10.0.0.2:65536"),
        std::string("10.0.0.2:-1"), std::string(":9999"), std::string("0.0.0.0:9999"), std::string("[::]:9999"),
        std::string("a b:1"), std::string("evil;rm -rf /:1"), std::string("x\n:1"), std::string("[zz]:1"),
        std::string("[]:1"), std::string(300, 'a') + ":1"}) {
    absl::StatusOr<JoinSpec> spec = ValidateJoin(Request(addr));
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << "\"" << addr << "\": " << spec.status();
    EXPECT_NE(spec.status().message().find("addr"), absl::string_view::npos) << spec.status();
  }
}

TEST(JoinRequestTest, RefusesMalformedCapacity) {
  pb::JoinRequest none;
  none.set_addr("10.0.0.2:9999");
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateJoin(none).status()));
  for (uint64_t mem :
       {uint64_t{0}, uint64_t{1000}, uint64_t{(1ull << 50) + 1}, uint64_t{std::numeric_limits<uint64_t>::max()}}) {
    absl::StatusOr<JoinSpec> spec = ValidateJoin(Request("10.0.0.2:9999", mem));
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << mem;
    EXPECT_NE(spec.status().message().find("capacity.mem"), absl::string_view::npos) << spec.status();
  }
  for (double cpu :
       {0.0, -1.0, 0.001, 4097.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    absl::StatusOr<JoinSpec> spec = ValidateJoin(Request("10.0.0.2:9999", 1ull << 30, cpu));
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << cpu;
    EXPECT_NE(spec.status().message().find("capacity.cpu"), absl::string_view::npos) << spec.status();
  }
}

}  // namespace
}  // namespace constellation::daemon::master
