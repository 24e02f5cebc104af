#include "lib/core/resources.h"

#include "gtest/gtest.h"

namespace constellation {
namespace {

uint64_t Mem(absl::string_view text) {
  auto mem = parse_mem(text);
  EXPECT_TRUE(mem.ok()) << text << ": " << mem.status();
  return mem.value_or(0);
}

void ExpectMemError(absl::string_view text, absl::string_view fragment) {
  auto mem = parse_mem(text);
  ASSERT_FALSE(mem.ok()) << text << " parsed as " << *mem;
  EXPECT_EQ(mem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mem.status().message().find(fragment), std::string::npos)
      << text << ": " << mem.status().message() << " lacks " << fragment;
}

TEST(ResourcesTest, Defaults) {
  Resources r;
  EXPECT_EQ(r.mem, 100 * kMiB);
  EXPECT_DOUBLE_EQ(r.cpu, 1.0 / 16);
}

TEST(ParseMemTest, BinaryUnits) {
  EXPECT_EQ(Mem("5 GiB"), 5 * kGiB);
  EXPECT_EQ(Mem("1.5GiB"), 3 * kGiB / 2);
  EXPECT_EQ(Mem("512 MiB"), 512 * kMiB);
  EXPECT_EQ(Mem("100B"), 100u);
  EXPECT_EQ(Mem("64 KiB"), 64 * kKiB);
  EXPECT_EQ(Mem("2 TiB"), 2 * kTiB);
  EXPECT_EQ(Mem("  7   MiB  "), 7 * kMiB);
  EXPECT_EQ(Mem("0 B"), 0u);
  EXPECT_EQ(Mem(".5 KiB"), 512u);
}

TEST(ParseMemTest, FractionsRoundDownToWholeBytes) {
  EXPECT_EQ(Mem("0.1 GiB"), kGiB / 10);
  EXPECT_EQ(Mem("1.0000000000000000000001 KiB"), kKiB);
}

TEST(ParseMemTest, LargestValue) {
  EXPECT_EQ(Mem("18446744073709551615 B"), ~uint64_t{0});
  EXPECT_EQ(Mem("16383 PiB"), 16383 * kTiB * kKiB);
}

TEST(ParseMemTest, Errors) {
  ExpectMemError("5 GB", "did you mean \"GiB\"");
  ExpectMemError("5 mb", "did you mean \"MiB\"");
  ExpectMemError("-1 GiB", "negative");
  ExpectMemError("18446744073709551616 B", "too large");
  ExpectMemError("18000000000 GiB", "too large");
  ExpectMemError("99999999999999999999999999 B", "too large");
  ExpectMemError("5", "no unit");
  ExpectMemError("GiB", "no number");
  ExpectMemError("", "no number");
  ExpectMemError("5 parsecs", "unknown unit");
  ExpectMemError("1.5.5 GiB", "unknown unit");
}

TEST(ParseCpuTest, Numbers) {
  EXPECT_DOUBLE_EQ(*parse_cpu("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cpu("2"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_cpu(" 16 "), 16.0);
  EXPECT_DOUBLE_EQ(*parse_cpu("0.0625"), 0.0625);
}

TEST(ParseCpuTest, Errors) {
  for (const char* bad : {"", "0", "-1", "abc", "1 core", "nan", "inf", "1e999"}) {
    EXPECT_FALSE(parse_cpu(bad).ok()) << bad;
  }
}

TEST(FormatMemTest, ReadsBack) {
  EXPECT_EQ(format_mem(100 * kMiB), "100 MiB");
  EXPECT_EQ(format_mem(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(format_mem(100), "100 B");
  EXPECT_EQ(format_mem(0), "0 B");
  for (uint64_t bytes : {uint64_t{1}, kKiB, 3 * kMiB, 7 * kGiB, 5 * kTiB}) {
    EXPECT_EQ(Mem(format_mem(bytes)), bytes);
  }
  EXPECT_EQ(to_string(Resources{kGiB, 0.5}), "mem 1 GiB, cpu 0.5");
}

}  // namespace
}  // namespace constellation
