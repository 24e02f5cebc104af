#pragma once

// Support for channel_bench.cc: what a measurement is, pinning, resource usage,
// and the two transports (our channels, raw TCP). Only channel_bench.cc includes it.

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "bench/bench_support.h"
#include "constellation/constellation.h"

namespace channel_bench {

using constellation::Pid;
using constellation::Receiver;
using constellation::Sender;

// Clock, pinning and usage are shared with the peer comparison (bench/compare/).
using bench::AllowedCpus;
using bench::g_all_cpus;
using bench::GetUsage;
using bench::NowNs;
using bench::PinProcess;
using bench::Usage;

constexpr int64_t kBigMessage = 1 << 20;                    // bytes, the throughput test
constexpr int kBatch = 512;                                 // 8-byte messages per send() in the batched raw variant
constexpr absl::Duration kStepTimeout = absl::Seconds(20);  // no single wait in a measurement takes longer
constexpr int kStepTimeoutSeconds = 20;

// ---------------------------------------------------------------------------
// What one measurement is; the spawn argument of the child.

enum Kind : int64_t { kOurs = 0, kRaw = 1, kRawBatched = 2 };
enum Test : int64_t { kLatency = 0, kThroughput = 1, kRate = 2 };
enum PinMode : int64_t { kSameCore = 0, kTwoCores = 1, kUnpinned = 2 };

inline const char* KindName(int64_t kind) {
  switch (kind) {
    case kOurs:
      return "ours";
    case kRaw:
      return "raw TCP";
    default:
      return "raw TCP batched";
  }
}
inline const char* PinName(int64_t pin) {
  switch (pin) {
    case kSameCore:
      return "same core";
    case kTwoCores:
      return "two cores";
    default:
      return "unpinned";
  }
}

struct Job {
  int64_t kind = kOurs;
  int64_t test = kLatency;
  int64_t pin = kUnpinned;
  int64_t child_cpu = -1;  // -1: every CPU this program may use
  int64_t port = 0;        // raw: the root's listening port on 127.0.0.1
  int64_t warmup = 0;      // messages (round trips) before the timed phase
  int64_t count = 0;       // messages (round trips) in the timed phase
  template <class Archive>
  void serialize(Archive& ar) {
    ar(kind, test, pin, child_cpu, port, warmup, count);
  }
};

// ---------------------------------------------------------------------------
[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "channel_bench: %s\n", what.c_str());
  std::fflush(nullptr);
  std::exit(1);
}

// ---------------------------------------------------------------------------
// The two transports behind one interface. A Link sends and receives 8-byte
// values and the one-way streams; every wait is bounded and an error ends the
// process with a message.

class Link {
 public:
  virtual ~Link() = default;
  virtual void SendWord(uint64_t v) = 0;
  virtual uint64_t RecvWord() = 0;
  virtual void SendStream(const Job& job, int64_t messages) = 0;
  virtual void RecvStream(const Job& job, int64_t messages) = 0;
};

// Sender/Receiver. A process holds one Sender and one Receiver per remote, so
// the throughput test uses Sender<std::string> one way and Sender<uint64_t>
// (acks) the other; the other tests use uint64_t both ways.
class OursLink : public Link {
 public:
  OursLink(Pid remote, int64_t test, bool parent) {
    bool big = test == kThroughput;
    if (parent) {
      words_in_.emplace(remote);
      if (big) {
        big_out_.emplace(remote);
      } else {
        words_out_.emplace(remote);
      }
    } else {
      words_out_.emplace(remote);
      if (big) {
        big_in_.emplace(remote);
      } else {
        words_in_.emplace(remote);
      }
    }
  }
  void SendWord(uint64_t v) override {
    absl::Status s = words_out_->send(v);
    if (!s.ok()) Die("send: " + s.ToString());
  }
  uint64_t RecvWord() override {
    absl::StatusOr<uint64_t> v = words_in_->recv_for(kStepTimeout);
    if (!v.ok()) Die("recv: " + v.status().ToString());
    return *v;
  }
  void SendStream(const Job& job, int64_t messages) override {
    if (job.test == kThroughput) {
      if (big_.size() != static_cast<size_t>(kBigMessage)) big_.assign(kBigMessage, 'x');
      for (int64_t i = 0; i < messages; ++i) {
        absl::Status s = big_out_->send(big_);
        if (!s.ok()) Die("send: " + s.ToString());
      }
    } else {
      for (int64_t i = 0; i < messages; ++i) SendWord(static_cast<uint64_t>(i));
    }
  }
  void RecvStream(const Job& job, int64_t messages) override {
    for (int64_t i = 0; i < messages; ++i) {
      if (job.test == kThroughput) {
        absl::StatusOr<std::string> v = big_in_->recv_for(kStepTimeout);
        if (!v.ok()) Die("recv: " + v.status().ToString());
        if (v->size() != static_cast<size_t>(kBigMessage)) Die("a big message of the wrong size");
      } else if (RecvWord() != static_cast<uint64_t>(i)) {
        Die("messages out of order");
      }
    }
  }
  // Waits until the remote process is gone (its channel answers kUnavailable).
  void AwaitExit() {
    while (true) {
      absl::StatusOr<uint64_t> v = words_in_->recv_for(kStepTimeout);
      if (!v.ok()) {
        if (absl::IsUnavailable(v.status())) return;
        Die("waiting for the child's exit: " + v.status().ToString());
      }
    }
  }

 private:
  std::optional<Sender<uint64_t>> words_out_;
  std::optional<Receiver<uint64_t>> words_in_;
  std::optional<Sender<std::string>> big_out_;
  std::optional<Receiver<std::string>> big_in_;
  std::string big_;
};

inline void SetSocketOptions(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kStepTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Plain blocking TCP: one send() per message (or per batch), read() into a buffer.
class RawLink : public Link {
 public:
  explicit RawLink(int fd) : fd_(fd) {}
  ~RawLink() override { close(fd_); }
  void SendWord(uint64_t v) override { WriteAll(reinterpret_cast<const char*>(&v), sizeof(v)); }
  uint64_t RecvWord() override {
    uint64_t v;
    ReadAll(reinterpret_cast<char*>(&v), sizeof(v));
    return v;
  }
  void SendStream(const Job& job, int64_t messages) override {
    if (job.test == kThroughput) {
      buffer_.assign(kBigMessage, 'x');
      for (int64_t i = 0; i < messages; ++i) WriteAll(buffer_.data(), kBigMessage);
    } else if (job.kind == kRawBatched) {
      uint64_t batch[kBatch];
      for (int64_t i = 0; i < messages;) {
        int n = static_cast<int>(std::min<int64_t>(kBatch, messages - i));
        for (int j = 0; j < n; ++j) batch[j] = static_cast<uint64_t>(i + j);
        WriteAll(reinterpret_cast<const char*>(batch), n * sizeof(uint64_t));
        i += n;
      }
    } else {
      for (int64_t i = 0; i < messages; ++i) SendWord(static_cast<uint64_t>(i));
    }
  }
  void RecvStream(const Job& job, int64_t messages) override {
    int64_t left = messages * (job.test == kThroughput ? kBigMessage : int64_t{sizeof(uint64_t)});
    size_t chunk = job.test == kThroughput ? kBigMessage : 64 << 10;
    buffer_.resize(chunk);
    while (left > 0) {
      ssize_t n = read(fd_, buffer_.data(), std::min<int64_t>(left, chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) Die(std::string("raw read: ") + (n == 0 ? "EOF" : std::strerror(errno)));
      left -= n;
    }
  }

 private:
  void WriteAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) Die(std::string("raw send: ") + std::strerror(errno));
      p += w;
      n -= w;
    }
  }
  void ReadAll(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = read(fd_, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) Die(std::string("raw read: ") + (r == 0 ? "EOF" : std::strerror(errno)));
      p += r;
      n -= r;
    }
  }

  int fd_;
  std::string buffer_;
};

}  // namespace channel_bench
