// ProcessServer with a fake handler and real unix sockets: admission, holds,
// spawn requests whole and in chunks, drops, replies from another thread, and
// watched fds. The test thread is the loop thread; waits are Turn(), never
// sleeps (Turn's timeout is a failure guard only).
#include "lib/process/process_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

using Conn = ProcessServer::Conn;

class FakeHandler : public ProcessServer::Handler {
 public:
  bool Admit(Conn conn, const PeerCredentials& peer) override {
    admitted_peer = peer;
    if (!admit) return false;
    accepted.push_back(conn);
    return true;
  }
  bool IsHeld(Conn conn) const override { return held.contains(conn); }
  bool Identified(Conn conn) const override { return identified.contains(conn); }
  absl::Status OnMessage(Conn conn, const pb::LocalMessage& message) override {
    messages.emplace_back(conn, message);
    if (server != nullptr && reply_bytes > 0) {  // a request that earns a reply, as a watch earns a verdict
      pb::LocalMessage reply;
      reply.mutable_event()->mutable_output()->set_data(std::string(reply_bytes, 'r'));
      server->Send(conn, reply);
    }
    if (message.has_hello()) identified.insert(conn);
    return refuse_next ? absl::PermissionDeniedError("refused by the test") : absl::OkStatus();
  }
  void OnSpawnRequest(Conn conn, const pb::SpawnRequest& request) override { spawns.emplace_back(conn, request); }
  void OnClose(Conn conn) override { closed.push_back(conn); }
  void OnWake() override { ++wakes; }

  bool admit = true;
  bool refuse_next = false;
  ProcessServer* server = nullptr;
  size_t reply_bytes = 0;
  PeerCredentials admitted_peer;
  std::vector<Conn> accepted;
  std::set<Conn> held, identified;
  std::vector<std::pair<Conn, pb::LocalMessage>> messages;
  std::vector<std::pair<Conn, pb::SpawnRequest>> spawns;
  std::vector<Conn> closed;
  int wakes = 0;
};

pb::LocalMessage Hello() {
  pb::LocalMessage m;
  m.mutable_hello()->set_monitor_os_pid(getpid());
  return m;
}

pb::LocalMessage Output(const std::string& text) {
  pb::LocalMessage m;
  m.mutable_event()->mutable_output()->set_fd(1);
  m.mutable_event()->mutable_output()->set_data(text);
  return m;
}

pb::LocalMessage Request(uint64_t id, size_t arg_bytes = 0) {
  pb::LocalMessage m;
  m.mutable_spawn_request()->set_id(id);
  m.mutable_spawn_request()->mutable_call()->set_args(std::string(arg_bytes, 'a'));
  return m;
}

// Sends `request` in chunks of `piece` bytes, as spawn() does for big ones.
void SendChunked(int fd, const pb::SpawnRequest& request, size_t piece) {
  std::string bytes = request.SerializeAsString();
  for (size_t at = 0; at < bytes.size(); at += piece) {
    pb::LocalMessage chunk;
    chunk.mutable_spawn_request_chunk()->set_data(bytes.substr(at, piece));
    chunk.mutable_spawn_request_chunk()->set_last(at + piece >= bytes.size());
    chunk.mutable_spawn_request_chunk()->set_id(request.id());
    ASSERT_TRUE(SendLocal(fd, chunk).ok());
  }
}

// Whether the server closed `fd` (reads to its end).
bool ClosedByServer(int fd) {
  pb::LocalMessage m;
  while (true) {
    absl::StatusOr<bool> got = ReceiveLocal(fd, &m);
    if (!got.ok() || !*got) return got.ok() || absl::StrContains(got.status().message(), "reset");
  }
}

class ProcessServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<LocalListener> listener = ListenLocal("process-server-test");
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *listener;
    absl::StatusOr<std::unique_ptr<ProcessServer>> server = ProcessServer::Create(listener_.fd, &handler_, "test");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();
    for (int fd : clients_) close(fd);
    RemoveLocalListener(listener_);
  }

  int Connect() {
    absl::StatusOr<int> fd = ConnectLocal(listener_.path);
    EXPECT_TRUE(fd.ok()) << fd.status();
    clients_.push_back(*fd);
    return *fd;
  }

  // Turns until `done` (a failure guard bounds it).
  // Turns (10 ms at most each) until `done`, for up to 30 s: far more than a
  // test needs on a loaded machine (the sanitizers', in CI), so only a real
  // hang ends it.
  bool TurnUntil(const std::function<bool()>& done) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!done() && absl::Now() < deadline) server_->Turn(10000);
    return done();
  }

  FakeHandler handler_;
  LocalListener listener_;
  std::unique_ptr<ProcessServer> server_;
  std::vector<int> clients_;
};

TEST_F(ProcessServerTest, PacketsArriveInOrderAndTheCloseIsReported) {
  int fd = Connect();
  ASSERT_TRUE(SendLocal(fd, Hello()).ok());
  ASSERT_TRUE(SendLocal(fd, Output("one")).ok());
  ASSERT_TRUE(SendLocal(fd, Output("two")).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.messages.size() == 3; }));
  EXPECT_EQ(handler_.admitted_peer.pid, getpid());
  EXPECT_EQ(handler_.admitted_peer.uid, geteuid());
  EXPECT_EQ(handler_.messages[1].second.event().output().data(), "one");
  EXPECT_EQ(handler_.messages[2].second.event().output().data(), "two");
  EXPECT_EQ(server_->size(), 1u);
  shutdown(fd, SHUT_RDWR);
  ASSERT_TRUE(TurnUntil([&] { return !handler_.closed.empty(); }));
  EXPECT_EQ(handler_.closed, handler_.accepted);
  EXPECT_EQ(server_->size(), 0u);
}

TEST_F(ProcessServerTest, AConnectionNotAdmittedIsClosedAtOnce) {
  handler_.admit = false;
  int fd = Connect();
  server_->Turn(10000);
  EXPECT_TRUE(ClosedByServer(fd));
  EXPECT_TRUE(handler_.closed.empty());
  EXPECT_EQ(server_->size(), 0u);
}

TEST_F(ProcessServerTest, AHeldConnectionIsNotReadUntilReleased) {
  int fd = Connect();
  ASSERT_TRUE(SendLocal(fd, Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.messages.size() == 1; }));
  Conn conn = handler_.accepted[0];
  handler_.held.insert(conn);
  ASSERT_TRUE(SendLocal(fd, Output("later")).ok());
  // Another connection's packet comes through meanwhile.
  int other = Connect();
  ASSERT_TRUE(SendLocal(other, Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.messages.size() == 2; }));
  EXPECT_NE(handler_.messages[1].first, conn);
  server_->Read(conn);  // held: nothing read
  EXPECT_EQ(handler_.messages.size(), 2u);
  handler_.held.erase(conn);
  server_->Read(conn);
  ASSERT_EQ(handler_.messages.size(), 3u);
  EXPECT_EQ(handler_.messages[2].second.event().output().data(), "later");
}

TEST_F(ProcessServerTest, SpawnRequestsBeforeAHelloGoToOnMessage) {
  int fd = Connect();
  ASSERT_TRUE(SendLocal(fd, Request(1)).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.messages.size() == 1; }));
  EXPECT_TRUE(handler_.messages[0].second.has_spawn_request());
  EXPECT_TRUE(handler_.spawns.empty());
}

TEST_F(ProcessServerTest, SpawnRequestsWholeAndInChunks) {
  int fd = Connect();
  ASSERT_TRUE(SendLocal(fd, Hello()).ok());
  ASSERT_TRUE(SendLocal(fd, Request(1)).ok());
  SendChunked(fd, Request(2, 3 * kMaxOutputChunk).spawn_request(), kMaxOutputChunk);
  ASSERT_TRUE(TurnUntil([&] { return handler_.spawns.size() == 2; }));
  EXPECT_EQ(handler_.spawns[0].second.id(), 1u);
  EXPECT_EQ(handler_.spawns[1].second.id(), 2u);
  EXPECT_EQ(handler_.spawns[1].second.call().args().size(), 3 * kMaxOutputChunk);
}

TEST_F(ProcessServerTest, ATooBigRequestIsRefusedAndAMalformedOneDropped) {
  int fd = Connect();
  ASSERT_TRUE(SendLocal(fd, Hello()).ok());
  // More than kMaxSpawnRequest, more than the socket buffers: sent from a
  // thread while this one turns; the reply's arrival wakes the loop.
  int got_reply = eventfd(0, EFD_CLOEXEC);
  bool woken = false;
  server_->Watch(got_reply, [&] { woken = true; });
  pb::LocalMessage reply;
  std::thread client([&] {
    pb::LocalMessage chunk;
    chunk.mutable_spawn_request_chunk()->set_id(9);
    chunk.mutable_spawn_request_chunk()->set_data(std::string(kMaxOutputChunk, 'x'));
    for (size_t sent = 0; sent <= kMaxSpawnRequest; sent += kMaxOutputChunk) SendLocal(fd, chunk).IgnoreError();
    chunk.mutable_spawn_request_chunk()->set_last(true);
    SendLocal(fd, chunk).IgnoreError();
    ReceiveLocal(fd, &reply).IgnoreError();
    uint64_t one = 1;
    (void)!write(got_reply, &one, sizeof(one));
  });
  bool replied = TurnUntil([&] { return woken; });
  if (!replied) shutdown(fd, SHUT_RDWR);  // unblocks the client, so the failure is reported
  client.join();
  ASSERT_TRUE(replied);
  server_->Unwatch(got_reply);
  close(got_reply);
  EXPECT_EQ(reply.spawn_reply().id(), 9u);
  EXPECT_EQ(reply.spawn_reply().code(), RequestChunks::TooBigReply(pb::RequestChunk()).code());
  EXPECT_TRUE(handler_.spawns.empty());
  EXPECT_TRUE(handler_.closed.empty());

  pb::LocalMessage bad;
  bad.mutable_spawn_request_chunk()->set_data("\xff\xff\xff");
  bad.mutable_spawn_request_chunk()->set_last(true);
  ASSERT_TRUE(SendLocal(fd, bad).ok());
  ASSERT_TRUE(TurnUntil([&] { return !handler_.closed.empty(); }));
  EXPECT_TRUE(ClosedByServer(fd));
  EXPECT_TRUE(handler_.spawns.empty());
}

TEST_F(ProcessServerTest, AnErrorFromTheHandlerDropsTheConnection) {
  int fd = Connect();
  handler_.refuse_next = true;
  ASSERT_TRUE(SendLocal(fd, Hello()).ok());
  ASSERT_TRUE(SendLocal(fd, Output("never read")).ok());
  ASSERT_TRUE(TurnUntil([&] { return !handler_.closed.empty(); }));
  EXPECT_EQ(handler_.messages.size(), 1u);
  EXPECT_TRUE(ClosedByServer(fd));
  EXPECT_EQ(server_->size(), 0u);
}

TEST_F(ProcessServerTest, RepliesQueuedFromAnotherThreadReachTheirConnectionOnly) {
  int first = Connect();
  ASSERT_TRUE(SendLocal(first, Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.accepted.size() == 1; }));
  Conn gone = handler_.accepted[0];
  shutdown(first, SHUT_RDWR);
  ASSERT_TRUE(TurnUntil([&] { return handler_.closed.size() == 1; }));
  int second = Connect();  // may get the first one's fd on the server's side
  ASSERT_TRUE(SendLocal(second, Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.accepted.size() == 2; }));
  Conn live = handler_.accepted[1];
  EXPECT_NE(live, gone);
  std::thread other([&] {
    pb::SpawnReply late, reply;
    late.set_id(1);
    reply.set_id(2);
    server_->QueueReply(gone, late);
    server_->QueueReply(live, reply);
  });
  other.join();
  server_->Turn(10000);
  EXPECT_EQ(handler_.wakes, 1);
  pb::LocalMessage got;
  ASSERT_TRUE(ReceiveLocal(second, &got).ok());
  EXPECT_EQ(got.spawn_reply().id(), 2u);
  EXPECT_TRUE(absl::IsUnavailable(ReceiveLocal(second, &got, /*dont_wait=*/true).status()));
}

// Sending never waits for a peer to read (a wait there once deadlocked
// with a monitor writing back, and a bounded one dropped verdicts): what the
// socket has no room for is queued, the loop goes on, and it all arrives.
TEST_F(ProcessServerTest, WhatAPeerHasNotReadYetIsQueuedInOrderWhileTheLoopGoesOn) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  Conn conn = server_->AddConnection(pair[0]);
  clients_.push_back(pair[1]);
  constexpr int kPackets = 20000;  // far more than the socket holds
  for (int i = 0; i < kPackets; ++i) server_->Send(conn, Output(absl::StrCat(i)));
  EXPECT_GT(server_->queued(conn), 0u);
  // The peer writes while it does not read: the loop still reads it.
  ASSERT_TRUE(SendLocal(pair[1], Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.messages.size() == 1; }));
  int next = 0;
  while (next < kPackets) {
    pb::LocalMessage got;
    absl::StatusOr<bool> read = ReceiveLocal(pair[1], &got, /*dont_wait=*/true);
    if (absl::IsUnavailable(read.status())) {  // read all that was sent: let the loop send more
      server_->Turn(10000);
      continue;
    }
    ASSERT_TRUE(read.ok() && *read) << read.status();
    ASSERT_EQ(got.event().output().data(), absl::StrCat(next)) << "out of order";
    ++next;
  }
  EXPECT_EQ(server_->queued(conn), 0u);
  EXPECT_TRUE(handler_.closed.empty());
}

// A peer that never reads cannot make the server hold more than a bound:
// past it, the server stops reading that peer's requests until it drains.
TEST_F(ProcessServerTest, AConnectionWithTooMuchQueuedIsNotReadUntilItDrains) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  Conn conn = server_->AddConnection(pair[0]);
  clients_.push_back(pair[1]);
  const std::string chunk(kMaxOutputChunk, 'x');
  while (server_->queued(conn) <= ProcessServer::kMaxQueuedPerConnection) server_->Send(conn, Output(chunk));
  ASSERT_TRUE(SendLocal(pair[1], Hello()).ok());
  server_->Turn(0);  // the hello is there to read, and is not read
  server_->Read(conn);
  EXPECT_TRUE(handler_.messages.empty());
  // The peer reads; the server sends the rest and then reads the hello.
  ASSERT_TRUE(TurnUntil([&] {
    pb::LocalMessage got;
    while (ReceiveLocal(pair[1], &got, /*dont_wait=*/true).ok()) {
    }
    return !handler_.messages.empty();
  }));
  EXPECT_TRUE(handler_.messages[0].second.has_hello());
  EXPECT_LE(server_->queued(conn), ProcessServer::kMaxQueuedPerConnection);
}

// What a stranger can make the server hold: a peer that sends requests which
// each earn a reply, and never reads. Past the bound the server stops reading
// it, so its requests wait in its own socket, and what is queued stays under
// the bound plus one turn's replies.
TEST_F(ProcessServerTest, APeerThatAsksAndNeverReadsIsNotReadPastTheBound) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  Conn conn = server_->AddConnection(pair[0]);
  clients_.push_back(pair[1]);
  handler_.server = server_.get();
  handler_.reply_bytes = 60 << 10;
  const size_t most = ProcessServer::kMaxQueuedPerConnection + ProcessServer::kPacketsPerTurn * (61 << 10);
  size_t handled = 0;
  ASSERT_EQ(fcntl(pair[1], F_SETFL, O_NONBLOCK), 0);
  for (int round = 0; round < 400; ++round) {
    while (SendLocal(pair[1], Output("ask")).ok()) {  // until its socket is full
    }
    server_->Turn(0);
    ASSERT_LE(server_->queued(conn), most) << "round " << round;
    if (round == 300) handled = handler_.messages.size();
  }
  EXPECT_GT(server_->queued(conn), ProcessServer::kMaxQueuedPerConnection);
  EXPECT_EQ(handler_.messages.size(), handled) << "the server went on reading a peer that does not read";
  EXPECT_TRUE(handler_.closed.empty());
}

// Out of fds, a queued connection cannot be accepted and the listener stays
// readable: polling it would spin. It waits instead, until a connection
// closes (or kAcceptRetry), and is accepted then.
TEST_F(ProcessServerTest, OutOfFdsAConnectionWaitsToBeAcceptedWithoutSpinning) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  server_->AddConnection(pair[0]);
  int waiting = Connect();  // queued on the listener
  int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no fd left to accept with
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  server_->Turn(0);
  const bool paused = server_->accept_paused();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(paused);
  EXPECT_TRUE(handler_.accepted.empty());
  EXPECT_EQ(server_->size(), 1u);
  // A connection closes: its fd is free, and the waiting one is accepted.
  close(pair[1]);
  ASSERT_TRUE(SendLocal(waiting, Hello()).ok());
  ASSERT_TRUE(TurnUntil([&] { return handler_.accepted.size() == 1 && !handler_.messages.empty(); }));
  EXPECT_FALSE(server_->accept_paused());
  EXPECT_EQ(handler_.closed.size(), 1u);
}

TEST_F(ProcessServerTest, AWakeFromAnotherThreadEndsTheTurn) {
  std::thread other([&] { server_->Wake(); });
  server_->Turn(-1);
  other.join();
  EXPECT_EQ(handler_.wakes, 1);
}

TEST_F(ProcessServerTest, WatchedFdsAndAddedConnections) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  Conn root = server_->AddConnection(pair[0]);
  clients_.push_back(pair[1]);
  int ready = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
  int calls = 0;
  server_->Watch(ready, [&] { ++calls; });
  server_->Turn(10000);
  EXPECT_EQ(calls, 1);
  server_->Unwatch(ready);
  ASSERT_TRUE(SendLocal(pair[1], Hello()).ok());
  server_->Turn(10000);
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(handler_.messages.size(), 1u);
  EXPECT_EQ(handler_.messages[0].first, root);
  close(ready);
}

}  // namespace
}  // namespace constellation::internal
