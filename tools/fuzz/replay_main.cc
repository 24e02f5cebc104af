// The main of a fuzz target's replay test (tools/fuzz/fuzz.bzl): runs the
// target's LLVMFuzzerTestOneInput, outside libFuzzer and with any compiler,
// on its Seeds() and on every file under the directories named on the
// command line (its corpus and kept findings). A crash, sanitizer report or
// violated property fails the test; an empty corpus does too, so a corpus
// that went missing is noticed.
//
//   replay DIR...                  replay
//   replay --write_seeds=DIR       write Seeds() into DIR as files, run nothing

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "tools/fuzz/seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional, as under libFuzzer: called once before any input.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

namespace fs = std::filesystem;

// A heap copy of exactly `bytes.size()` bytes, so that a read past the end is
// caught under ASan as it is under libFuzzer.
void RunOne(const std::string& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  LLVMFuzzerTestOneInput(copy.get(), bytes.size());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A relative DIR is taken from the workspace under `bazel run`.
int WriteSeeds(fs::path dir) {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (dir.is_relative() && workspace != nullptr) dir = fs::path(workspace) / dir;
  fs::create_directories(dir);
  for (const constellation::fuzz::Seed& seed : constellation::fuzz::Seeds()) {
    std::ofstream out(dir / ("seed-" + seed.name), std::ios::binary | std::ios::trunc);
    out.write(seed.bytes.data(), static_cast<std::streamsize>(seed.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", (dir / seed.name).c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to %s\n", constellation::fuzz::Seeds().size(), dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  const char* flag = "--write_seeds=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) return WriteSeeds(argv[i] + std::strlen(flag));
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path path(argv[i]);
    if (!fs::exists(path)) {
      std::fprintf(stderr, "%s does not exist (a corpus directory without files?)\n", argv[i]);
      return 1;
    }
    if (!fs::is_directory(path)) {
      files.push_back(path);
      continue;
    }
    for (const auto& entry : fs::recursive_directory_iterator(path)) {
      if (!entry.is_directory()) files.push_back(entry.path());
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "no corpus files under the paths given\n");
    return 1;
  }
  std::sort(files.begin(), files.end());

  size_t seeds = 0;
  for (const constellation::fuzz::Seed& seed : constellation::fuzz::Seeds()) {
    RunOne(seed.bytes);
    ++seeds;
  }
  for (const fs::path& file : files) {
    std::printf("replaying %s\n", file.c_str());
    std::fflush(stdout);  // names the input if it crashes
    RunOne(ReadFile(file));
  }
  std::printf("replayed %zu seeds and %zu corpus files\n", seeds, files.size());
  return 0;
}
