// Channel scenarios (scenarios.h) of bulk data and back pressure: 100 MiB
// values each way, a stream of 1 MiB values, a reader that stops, one stalled direction not stalling the
// other, and the exit flush giving up on a peer that never reads.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

// ---- big_value: 100 MiB each way --------------------------------------------------------

// Built from a 4 KiB pseudo-random block copied page by page, each page
// stamped with its index: cheap to make and check even unoptimized and under
// ThreadSanitizer (memcpy/memcmp), and still catches corruption, loss and
// reordering of pages.
constexpr size_t kBigPage = 4096;

std::string BigBlock(uint64_t seed) {
  std::string block(kBigPage, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < kBigPage; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    block[i] = static_cast<char>(x);
  }
  return block;
}

std::string BigValue(size_t size, uint64_t seed) {
  std::string block = BigBlock(seed);
  std::string s(size, '\0');
  for (size_t at = 0; at < size; at += kBigPage) {
    size_t n = std::min(kBigPage, size - at);
    std::memcpy(s.data() + at, block.data(), n);
    uint64_t stamp = at / kBigPage ^ (seed << 56);
    std::memcpy(s.data() + at, &stamp, std::min<size_t>(n, sizeof(stamp)));
  }
  return s;
}

bool IsBigValue(const std::string& s, size_t size, uint64_t seed) {
  if (s.size() != size) return false;
  std::string want_page = BigBlock(seed);
  for (size_t at = 0; at < size; at += kBigPage) {
    size_t n = std::min(kBigPage, size - at);
    uint64_t stamp = at / kBigPage ^ (seed << 56);
    std::memcpy(want_page.data(), &stamp, std::min<size_t>(n, sizeof(stamp)));
    if (std::memcmp(s.data() + at, want_page.data(), n) != 0) return false;
  }
  return true;
}

void BigChild(Pid parent, int64_t size) {
  Receiver<std::string> in(parent);
  Sender<std::string> out(parent);
  std::string got = Get(in.recv(), "child recv big");
  Expect(got.size() == static_cast<size_t>(size), absl::StrCat("child got ", got.size(), " bytes"));
  Expect(IsBigValue(got, size, 1), "child: the big value's bytes differ");
  got.clear();
  got.shrink_to_fit();
  ExpectOk(out.send(BigValue(size, 2)), "child send big");
  Report(absl::StrCat("child received and sent ", size, " bytes"));
}  // exits right after sending: the exit flush carries the value

int BigValueScenario(int mib) {
  int64_t size = int64_t{mib} * kOneMiB;
  Pid child = SpawnWith(kBigValueResources, BigChild, size);
  Sender<std::string> out(child);
  Receiver<std::string> in(child);
  absl::Time start = absl::Now();
  absl::Duration send_took, recv_took;
  {
    std::string big = BigValue(size, 1);
    absl::Time t = absl::Now();
    ExpectOk(out.send(big), "send big");
    send_took = absl::Now() - t;
  }
  absl::Time t = absl::Now();
  std::string got = Get(in.recv(), "recv big");
  recv_took = absl::Now() - t;
  Expect(got.size() == static_cast<size_t>(size), absl::StrCat("parent got ", got.size(), " bytes"));
  Expect(IsBigValue(got, size, 2), "parent: the big value's bytes differ");
  ExpectGone(in, "recv after the child returned");
  Report(absl::StrCat("big value of ", mib, " MiB each way in ", absl::ToInt64Milliseconds(absl::Now() - start),
                      " ms (send returned after ", absl::ToInt64Milliseconds(send_took), " ms, recv waited ",
                      absl::ToInt64Milliseconds(recv_took), " ms)"));
  return 0;
}

// ---- big_stream: 1 MiB strings, each handed over in the buffer it arrived in ---------------

constexpr int kStreamValues = 300;
constexpr int kStreamWarmup = 50;

// Each value is the same 1 MiB but for its index in its first 8 bytes.
void StreamChild(Pid parent) {
  Sender<std::string> out(parent);
  std::string value = BigValue(kOneMiB, 3);
  for (int64_t i = 0; i < kStreamValues; ++i) {
    std::memcpy(value.data(), &i, sizeof(i));
    ExpectOk(out.send(value), absl::StrCat("send value ", i));
  }
}

uint64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_minflt);
}

// The receiver's page faults over the stream after a warm-up: a value taken
// from its frame's buffer must not leave the next frame to fault a fresh
// buffer in (lib/process/malloc_tuning.h).
int BigStream() {
  Pid child = SpawnWith(kBigValueResources, StreamChild);
  Receiver<std::string> in(child);
  const std::string want = BigValue(kOneMiB, 3);
  uint64_t faults_after_warmup = 0;
  for (int64_t i = 0; i < kStreamValues; ++i) {
    std::string got = Get(in.recv(), absl::StrCat("recv value ", i));
    int64_t index = -1;
    if (got.size() == kOneMiB) std::memcpy(&index, got.data(), sizeof(index));
    Expect(index == i, absl::StrCat("value ", i, ": ", got.size(), " bytes, index ", index));
    Expect(std::memcmp(got.data() + sizeof(index), want.data() + sizeof(index), kOneMiB - sizeof(index)) == 0,
           absl::StrCat("value ", i, ": its bytes differ"));
    if (i + 1 == kStreamWarmup) faults_after_warmup = MinorFaults();
  }
  Report(absl::StrCat("big_stream: ", kStreamValues - kStreamWarmup, " values of 1 MiB after the warm-up, ",
                      MinorFaults() - faults_after_warmup, " page faults"));
  return 0;
}

// ---- back_pressure: a reader that stops; try_send until kDeadlineExceeded -----------------

constexpr size_t kPressureValue = 64 * 1024;
constexpr int kPressureMore = 200;

// Tells the reader to start: gets the reader's pid from the parent, then signals it.
void PressureHelper(Pid parent) {
  Pid reader = Get(Receiver<Pid>(parent).recv(), "helper recv");
  ExpectOk(Sender<int>(reader).send(1), "helper send go");
}

void PressureReader(Pid parent, Pid helper) {
  Receiver<std::string> in(parent);
  Get(Receiver<int>(helper).recv(), "reader recv go");  // reads nothing from the parent before this
  int64_t count = 0;
  while (true) {
    std::string v = Get(in.recv(), absl::StrCat("reader recv ", count));
    if (v == "end") break;
    ExpectPayload(v, count, kPressureValue, "reader");
    ++count;
  }
  ExpectOk(Sender<int64_t>(parent).send(count), "reader send count");
  Report(absl::StrCat("reader got ", count, " values in order"));
}

int BackPressure() {
  Pid helper = Spawn(PressureHelper);
  Pid reader = Spawn(PressureReader, helper);
  Sender<std::string> out(reader);
  uint64_t rss_before = Rss();
  int64_t sent = 0;
  absl::Status status;
  while (true) {
    status = out.try_send(Payload(sent, kPressureValue));
    if (!status.ok()) break;
    ++sent;
    Expect(sent < 20000, absl::StrCat("try_send never blocked: ", sent, " values of 64 KiB accepted"));
  }
  Expect(absl::IsDeadlineExceeded(status), "try_send at the bound: " + status.ToString());
  int64_t first_refusal = sent;
  // The first refusal can be momentary (the loop may still move queued frames
  // into the socket buffers and the reader's queue): fill until a send waits
  // 300 ms in vain. Nobody reads, so this must stop soon.
  while (true) {
    status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (!status.ok()) break;
    ++sent;
    Expect(sent < 20000, absl::StrCat("send_for never blocked: ", sent, " values of 64 KiB accepted"));
  }
  Expect(absl::IsDeadlineExceeded(status), "send_for at the bound: " + status.ToString());
  uint64_t rss_after = Rss();
  int64_t growth_mib =
      (static_cast<int64_t>(rss_after) - static_cast<int64_t>(rss_before)) / static_cast<int64_t>(kOneMiB);
  absl::Status later = out.try_send(Payload(sent, kPressureValue));
  Expect(absl::IsDeadlineExceeded(later), "try_send while the reader waits: " + later.ToString());
  Report(absl::StrCat("back_pressure accepted ", sent, " values (", sent * kPressureValue / kOneMiB,
                      " MiB) before kDeadlineExceeded; sender RSS grew ", growth_mib, " MiB; first refusal after ",
                      first_refusal));

  ExpectOk(Sender<Pid>(helper).send(reader), "send go via the helper");
  for (int64_t i = sent; i < sent + kPressureMore; ++i) ExpectOk(out.send(Payload(i, kPressureValue)), "send");
  ExpectOk(out.send("end"), "send end");
  int64_t count = Get(Receiver<int64_t>(reader).recv(), "recv count");
  Expect(count == sent + kPressureMore, absl::StrCat("reader counted ", count, ", sent ", sent + kPressureMore));
  Report(absl::StrCat("back_pressure delivered ", count, " values in order"));
  return 0;
}

// ---- no_stall: one direction stalled does not stall the other -----------------------------

constexpr int kNoStallValues = 500;  // 64 KiB each: far more than fits in the buffers

// Sends its values to the parent while never reading what the parent sent,
// until the helper says so. Its sends complete only if the parent can receive
// while the parent -> child direction of the same connection is full.
void NoStallChild(Pid parent, Pid helper) {
  Receiver<std::string> in(parent);
  Sender<std::string> out(parent);
  for (int64_t i = 0; i < kNoStallValues; ++i) ExpectOk(out.send(Payload(i, kPressureValue)), "child send");
  Get(Receiver<int>(helper).recv(), "child recv go");
  int64_t count = 0;
  while (true) {
    std::string v = Get(in.recv(), "child recv");
    if (v == "end") break;
    ExpectPayload(v, count, kPressureValue, "child");
    ++count;
  }
  Report(absl::StrCat("no_stall child read ", count, " values in order"));
}

int NoStall() {
  Pid helper = Spawn(PressureHelper);
  Pid child = Spawn(NoStallChild, helper);
  Sender<std::string> out(child);
  Receiver<std::string> in(child);
  int64_t sent = 0;
  while (true) {  // until the parent -> child direction is full: nobody reads it
    absl::Status status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (absl::IsDeadlineExceeded(status)) break;
    ExpectOk(status, "send");
    Expect(++sent < 20000, "the parent -> child direction never filled up");
  }
  for (int64_t i = 0; i < kNoStallValues; ++i) {
    absl::StatusOr<std::string> v = in.recv_for(absl::Seconds(20));
    Expect(v.ok(), absl::StrCat("recv ", i, " while the other direction is full: ", v.status().ToString()));
    ExpectPayload(*v, i, kPressureValue, "parent");
  }
  // The parent -> child direction is still stalled: the child reads nothing
  // until told. Room may have opened since it first filled (the kernel grows
  // a connection's buffers as it goes), so fill it again rather than assume
  // it is still full; it must fill up again within the bound.
  absl::Status still = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
  while (still.ok()) {
    Expect(++sent < 20000, "the parent -> child direction never filled up again");
    still = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
  }
  Expect(absl::IsDeadlineExceeded(still), "send while the child still does not read: " + still.ToString());
  ExpectOk(Sender<Pid>(helper).send(child), "send go via the helper");
  ExpectOk(out.send("end"), "send end");
  ExpectGone(in, "recv after the child returned");
  Report(
      absl::StrCat("no_stall parent received ", kNoStallValues, " values with ", sent, " values stuck the other way"));
  return 0;
}

// ---- stuck_peer: the exit flush gives up on a peer that does not read -------------------

// Fills its queue toward the parent (which never reads) and returns: the exit
// flush cannot finish and must give up after its bound (10 s).
void StuckSender(Pid parent) {
  Sender<std::string> out(parent);
  int64_t sent = 0;
  while (true) {
    absl::Status status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (absl::IsDeadlineExceeded(status)) break;
    ExpectOk(status, "send");
    Expect(++sent < 20000, "send never blocked");
  }
  Report(absl::StrCat("stuck sender queued ", sent, " values and returns"));
}

// Reports to the parent when `stuck` has exited (its Receiver sees the end).
void ExitWatcher(Pid parent) {
  Pid stuck = Get(Receiver<Pid>(parent).recv(), "watcher recv pid");
  Receiver<int> from_stuck(stuck);
  ExpectGone(from_stuck, "watcher recv from the stuck sender");
  ExpectOk(Sender<int>(parent).send(1), "watcher send");
}

int StuckPeer() {
  Pid watcher = Spawn(ExitWatcher);
  Pid stuck = Spawn(StuckSender);
  Receiver<std::string> in(stuck);  // never read until the sender has exited
  absl::Time start = absl::Now();
  ExpectOk(Sender<Pid>(watcher).send(stuck), "send pid to watcher");
  Get(Receiver<int>(watcher).recv(), "recv from watcher");
  absl::Duration took = absl::Now() - start;
  int64_t got = 0;
  while (true) {
    absl::StatusOr<std::string> v = in.recv();
    if (!v.ok()) {
      Expect(absl::IsUnavailable(v.status()), "recv after the sender exited: " + v.status().ToString());
      break;
    }
    ExpectPayload(*v, got, kPressureValue, "parent");  // what arrived is a prefix, in order
    ++got;
  }
  Report(absl::StrCat("stuck peer: the sender exited after ", absl::ToInt64Seconds(took), " s; ", got,
                      " values arrived in order, then kUnavailable"));
  return 0;
}

}  // namespace

int RunBulkScenario(const std::string& name, int argc, char** argv) {
  if (name == "big_value") return BigValueScenario(IntArg(argc, argv, 2, 100));
  if (name == "big_stream") return BigStream();
  if (name == "back_pressure") return BackPressure();
  if (name == "no_stall") return NoStall();
  if (name == "stuck_peer") return StuckPeer();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
