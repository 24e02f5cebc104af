// DataPlane: idle teardown, peer failure, exit flush and the process-wide
// instance. Split from data_plane.cc for size; same class, same rules.
#include <sys/ioctl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/net/data_plane.h"

namespace constellation::net {
namespace {

void LogDrop(const Link& link, const absl::Status& why) {
  std::fprintf(stderr, "constellation: dropped %s: %s\n", link.Describe().c_str(), std::string(why.message()).c_str());
}

}  // namespace

// ---- Teardown ----

void DataPlane::CheckIdle(const Pid& remote) {
  int endpoints = 0;
  std::shared_ptr<Peer> peer = FindPeer(remote, &endpoints);
  if (peer == nullptr || endpoints > 0) return;
  auto it = loop_peers_.find(remote);
  if (peer->failed() || it == loop_peers_.end()) {
    MaybeForget(remote);
    return;
  }
  LoopPeer& lp = it->second;
  if (lp.link == nullptr || lp.closing != Closing::kNone || exiting_) return;
  if (!lp.idle_timer) {
    lp.idle_timer = std::make_unique<Event>(*loop_, -1, 0, [this, remote](short) { OnIdleTimer(remote); });
  }
  if (!lp.idle_timer->pending()) lp.idle_timer->AddTimeout(options_.idle_timeout);
}

void DataPlane::OnIdleTimer(const Pid& remote) {
  int endpoints = 0;
  std::shared_ptr<Peer> peer = FindPeer(remote, &endpoints);
  auto it = loop_peers_.find(remote);
  if (peer == nullptr || endpoints > 0 || it == loop_peers_.end() || exiting_) return;
  LoopPeer& lp = it->second;
  if (lp.link == nullptr || lp.closing != Closing::kNone) return;
  if (peer->QueueIfIdle(FrameKind::kClose)) {
    lp.closing = Closing::kCloseSent;
    FlushPeer(remote);
  } else {
    lp.idle_timer->AddTimeout(options_.idle_timeout);  // something still in flight: look again later
  }
}

void DataPlane::CloseGracefully(const Pid& remote) {
  LoopPeer& lp = loop_peers_[remote];
  std::shared_ptr<Peer> peer = lp.link->peer();
  peer->Detach();
  KillLink(lp.link);
  lp.link = nullptr;
  lp.closing = Closing::kNone;
  SetOpen(-1);
  if (!lp.deferred.empty()) {
    Link* next = lp.deferred.front();
    lp.deferred.erase(lp.deferred.begin());
    for (Link* other : lp.deferred) KillLink(other);
    lp.deferred.clear();
    HandleIncoming(next);
    return;
  }
  int endpoints = 0;
  FindPeer(remote, &endpoints);
  if (endpoints > 0 || peer->HasOutgoing()) {
    peer->EndHold();
    Connect(remote);
    return;
  }
  MaybeForget(remote);
}

void DataPlane::OnLinkDown(Link* link, absl::Status why) {
  const Pid remote = link->remote();
  auto it = remote.is_null() ? loop_peers_.end() : loop_peers_.find(remote);
  if (it != loop_peers_.end() && it->second.link == link) {
    if (it->second.closing == Closing::kAckSent && absl::IsUnavailable(why)) {
      CloseGracefully(remote);  // the expected end of an idle close
      return;
    }
    if (!absl::IsUnavailable(why)) LogDrop(*link, why);
    if (verdicts()) {
      BreakConnection(link, why);
      return;
    }
    FailPeer(remote,
             absl::UnavailableError(absl::StrCat("process ", remote.to_string(), " is gone (", why.message(), ")")));
    return;
  }
  if (it != loop_peers_.end() && it->second.dialing == link) {
    it->second.dialing = nullptr;
    KillLink(link);
    DialFailed(remote, why);
    return;
  }
  if (it != loop_peers_.end()) {
    auto& deferred = it->second.deferred;
    deferred.erase(std::remove(deferred.begin(), deferred.end(), link), deferred.end());
  }
  // Closing a spare connection (the loser of a simultaneous connect, a late one
  // from a process already gone) is routine, and a connection that closes
  // having sent nothing can do no harm; bad bytes and stalled handshakes are
  // worth a line.
  if (!absl::IsUnavailable(why) && !absl::IsFailedPrecondition(why)) LogDrop(*link, why);
  KillLink(link);
}

// ---- Verdicts and redials ----

void DataPlane::Watch(const Pid& remote) {
  if (!verdicts()) return;
  LoopPeer& lp = loop_peers_[remote];
  if (lp.watched) return;
  lp.watched = true;
  options_.watch(remote);
}

void DataPlane::OnGone(const Pid& remote, absl::Status why, bool node_lost) {
  loop_->Post([this, remote, why = std::move(why), node_lost] { ApplyGone(remote, why, node_lost); });
}

void DataPlane::ApplyGone(const Pid& remote, const absl::Status& why, bool node_lost) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_.contains(remote)) return;
    dead_.emplace(remote, why);  // refuses its connections from now on
  }
  auto it = loop_peers_.find(remote);
  if (node_lost || it == loop_peers_.end() || it->second.link == nullptr) {
    FailPeer(remote, why);
    return;
  }
  // It exited: its kernel closed the connection, whose end (after the last
  // bytes it sent) arrives next; OnLinkDown then fails the peer with `why`.
  LoopPeer& lp = it->second;
  lp.gone_timer = std::make_unique<Event>(*loop_, -1, 0, [this, remote](short) {
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      status = dead_[remote];
    }
    FailPeer(remote, status);
  });
  lp.gone_timer->AddTimeout(options_.gone_drain);
}

void DataPlane::WatchReadable(int fd, std::function<void()> on_readable) {
  loop_->Post([this, fd, on_readable = std::move(on_readable)]() mutable {
    auto event = std::make_unique<Event>(*loop_, fd, EV_READ | EV_PERSIST,
                                         [on_readable = std::move(on_readable)](short) { on_readable(); });
    event->Add();
    watched_fds_.push_back(std::move(event));
  });
}

void DataPlane::DialFailed(const Pid& remote, absl::Status why) {
  if (verdicts()) {
    ScheduleRedial(remote);  // a slow or restarting peer is not a dead one
    return;
  }
  FailPeer(remote, absl::UnavailableError(absl::StrCat("cannot connect to process ", remote.to_string(), " at ",
                                                       remote.to_full_string(), ": ", why.message())));
}

void DataPlane::BreakConnection(Link* link, const absl::Status& why) {
  const Pid remote = link->remote();
  std::optional<absl::Status> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto dead = dead_.find(remote); dead != dead_.end()) gone = dead->second;
  }
  if (gone) {
    FailPeer(remote, *gone);  // the end of a process known gone: what it sent has been read
    return;
  }
  LoopPeer& lp = loop_peers_[remote];
  std::shared_ptr<Peer> peer = link->peer();
  // Unacknowledged bytes may be lost with the connection; none were frames
  // if nothing but the hello was written on it.
  int unacked = 0;
  if (ioctl(link->fd(), TIOCOUTQ, &unacked) != 0) unacked = 0;
  peer->Detach();
  if (peer->WrittenOnConnection() == 0) unacked = 0;
  KillLink(link);
  lp.link = nullptr;
  lp.closing = Closing::kNone;
  SetOpen(-1);
  if (unacked > 0) {
    // Said once the peer is known alive (the redial opens): if it exited
    // instead, its verdict says so, and that covers what it did not read.
    lp.pending_loss = absl::DataLossError(
        absl::StrCat("the connection to process ", remote.to_string(), " broke (", why.message(), ") with ", unacked,
                     " bytes unacknowledged: values sent before may not have been delivered; the channel reconnected"));
  }
  ScheduleRedial(remote);
  if (exiting_) CheckFlushed();
}

void DataPlane::ScheduleRedial(const Pid& remote) {
  int endpoints = 0;
  std::shared_ptr<Peer> peer = FindPeer(remote, &endpoints);
  // An exiting process needs a connection only for what it still has to send.
  if (peer == nullptr || peer->failed() || ((endpoints == 0 || exiting_) && !peer->HasOutgoing())) {
    MaybeForget(remote);
    return;
  }
  LoopPeer& lp = loop_peers_[remote];
  lp.redial_delay = std::clamp(2 * lp.redial_delay, options_.redial_min, options_.redial_max);
  if (!lp.retry_timer) {
    lp.retry_timer = std::make_unique<Event>(*loop_, -1, 0, [this, remote](short) { Connect(remote); });
  }
  if (!lp.retry_timer->pending()) lp.retry_timer->AddTimeout(lp.redial_delay);
}

void DataPlane::ReportExhausted(const Pid& remote, absl::string_view what, int error) {
  std::shared_ptr<Peer> peer = FindPeer(remote, nullptr);
  if (peer != nullptr) {
    peer->ReportOnce(absl::ResourceExhaustedError(absl::StrCat(
        "cannot connect to process ", remote.to_string(), ": ", what, ": ", std::strerror(error),
        " (this process is out of file descriptors or memory; raise `ulimit -n`, or hold fewer channels at once); "
        "the channel tries again")));
  }
  LoopPeer& lp = loop_peers_[remote];
  lp.redial_delay = std::max(lp.redial_delay, options_.redial_max / 2);  // no point hammering
  ScheduleRedial(remote);
}

void DataPlane::RestListener(int error) {
  if (!accept_warned_) {
    accept_warned_ = true;
    std::fprintf(stderr,
                 "constellation: cannot accept a channel connection: %s; connections wait until this process has "
                 "file descriptors to spare (raise `ulimit -n`)\n",
                 std::strerror(error));
  }
  listen_event_->Del();
  if (!accept_timer_) {
    accept_timer_ = std::make_unique<Event>(*loop_, -1, 0, [this](short) {
      if (listen_event_) listen_event_->Add();
    });
  }
  accept_timer_->AddTimeout(options_.accept_backoff);
}

void DataPlane::FailPeer(const Pid& remote, absl::Status status) {
  LoopPeer& lp = loop_peers_[remote];
  Bury(std::move(lp.gone_timer));
  lp.pending_loss = absl::OkStatus();
  std::shared_ptr<Peer> peer = FindPeer(remote, nullptr);
  if (lp.link != nullptr) {
    if (peer) peer->Detach();
    KillLink(lp.link);
    lp.link = nullptr;
    SetOpen(-1);
  }
  if (lp.dialing != nullptr) KillLink(lp.dialing);
  lp.dialing = nullptr;
  for (Link* link : lp.deferred) KillLink(link);
  lp.deferred.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    dead_.emplace(remote, status);
  }
  if (peer) peer->Fail(status);
  MaybeForget(remote);
  if (exiting_) CheckFlushed();
}

void DataPlane::KillLink(Link* link) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  if (link->role() == Link::Role::kAcceptor && !link->authenticated()) ForgetUnauthenticated(link);
  link->Kill();
  dead_links_.push_back(std::move(it->second));
  links_.erase(it);
  if (!sweep_posted_) {
    sweep_posted_ = true;
    loop_->Post([this] {
      sweep_posted_ = false;
      dead_links_.clear();
      dead_events_.clear();
    });
  }
}

void DataPlane::Bury(std::unique_ptr<Event> event) {
  if (event == nullptr) return;
  event->Del();
  dead_events_.push_back(std::move(event));
  if (!sweep_posted_) {
    sweep_posted_ = true;
    loop_->Post([this] {
      sweep_posted_ = false;
      dead_links_.clear();
      dead_events_.clear();
    });
  }
}

// ---- Exit flush ----

bool DataPlane::FlushForExit(absl::Duration timeout) {
  loop_->Post([this] {
    exiting_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [pid, entry] : peers_) entry.peer->DiscardInbound();
    }
    // Read (and drop) what peers send so closing our sockets sends FIN, not RST.
    // (ResumeRead may call back into us, changing loop_peers_; killed links
    // live until the next sweep.)
    std::vector<Link*> open;
    for (auto& [pid, lp] : loop_peers_) {
      if (lp.link != nullptr) open.push_back(lp.link);
    }
    for (Link* link : open) link->ResumeRead();
    flush_timer_ = std::make_unique<Event>(*loop_, -1, EV_PERSIST, [this](short) { CheckFlushed(); });
    flush_timer_->AddTimeout(absl::Milliseconds(1));
    CheckFlushed();
  });
  std::unique_lock<std::mutex> lock(state_mu_);
  return WaitUntil(state_cv_, lock, absl::Now() + timeout, [&] { return flushed_; });
}

std::vector<DataPlane::Undelivered> DataPlane::UndeliveredAtExit(bool flushed) {
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::vector<Undelivered> report;
  loop_->Post([&] {
    std::vector<std::pair<Pid, std::shared_ptr<Peer>>> peers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [pid, entry] : peers_) peers.emplace_back(pid, entry.peer);
    }
    for (auto& [pid, peer] : peers) {
      uint64_t bytes = peer->LostBytes();
      // After a flush that completed, what a connection opened since holds is
      // its hello, not channel data.
      auto lp = loop_peers_.find(pid);
      int unacked = 0;
      if (!flushed) {
        bytes += peer->QueuedBytes();
        if (lp != loop_peers_.end() && lp->second.link != nullptr &&
            ioctl(lp->second.link->fd(), TIOCOUTQ, &unacked) == 0 && unacked > 0) {
          bytes += static_cast<uint64_t>(unacked);
        }
      }
      if (bytes == 0) continue;
      absl::Status status = peer->status();
      std::string why = status.ok()
                            ? absl::StrCat("not delivered within ", absl::FormatDuration(options_.exit_flush_timeout),
                                           " (it did not read them, or could not be reached)")
                            : std::string(status.message());
      report.push_back(Undelivered{pid, bytes, std::move(why)});
    }
    std::lock_guard<std::mutex> lock(done_mu);
    done = true;
    done_cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return done; });
  return report;
}

void DataPlane::CheckFlushed() {
  if (!exiting_ || flush_timer_ == nullptr) return;
  bool done = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [pid, entry] : peers_) {
      if (entry.peer->HasOutgoing()) done = false;
    }
  }
  if (!done) return;
  for (auto& [pid, lp] : loop_peers_) {
    if (lp.link == nullptr) continue;
    // All is written: end each open connection's writing side. The peer's
    // kernel acknowledges a FIN at once, where it may hold the ACK of the last
    // data for its delayed-ACK timer (40 ms) when it has nothing to send back.
    if (lp.link->stage() == Link::Stage::kOpen && lp.link->peer() != nullptr && !lp.link->peer()->EndWritingIfIdle()) {
      done = false;
    }
    int unacked = 0;
    if (done && ioctl(lp.link->fd(), TIOCOUTQ, &unacked) == 0 && unacked > 0) done = false;
  }
  if (!done) return;
  flush_timer_->Del();
  std::lock_guard<std::mutex> lock(state_mu_);
  flushed_ = true;
  state_cv_.notify_all();
}

// ---- The process-wide instance ----

namespace {

std::atomic<DataPlane*> g_data_plane{nullptr};
std::function<void(const std::vector<DataPlane::Undelivered>&)> g_on_undelivered;

// At exit: waits (boundedly) for what channels still hold to be delivered,
// then says what was not, peer by peer.
void FlushAtExit() {
  DataPlane* plane = g_data_plane.load(std::memory_order_acquire);
  if (plane == nullptr) return;
  bool flushed = plane->FlushForExit(plane->options().exit_flush_timeout);
  std::vector<DataPlane::Undelivered> undelivered = plane->UndeliveredAtExit(flushed);
  for (const DataPlane::Undelivered& u : undelivered) {
    std::fprintf(stderr, "constellation: exit: %llu bytes of channel data to process %s were not delivered: %s\n",
                 static_cast<unsigned long long>(u.bytes), u.peer.to_string().c_str(), u.why.c_str());
  }
  if (!undelivered.empty() && g_on_undelivered) g_on_undelivered(undelivered);
}

}  // namespace

void StartDataPlane(int listen_fd, const Pid& self, std::string secret, std::function<void(const Pid&)> watch,
                    std::function<void(const std::vector<DataPlane::Undelivered>&)> on_undelivered) {
  if (g_data_plane.load() != nullptr) {
    std::fprintf(stderr, "constellation: StartDataPlane called twice (init() runs once per process)\n");
    std::abort();
  }
  if (secret.size() != kSecretSize) {
    std::fprintf(stderr,
                 "constellation: this process was given no deployment secret; its channels will refuse every "
                 "connection\n");
  }
  DataPlane::Options options;
  options.secret = std::move(secret);
  options.watch = std::move(watch);
  g_on_undelivered = std::move(on_undelivered);
  // Never destroyed: channels may be used until exit, and the atexit flush needs it.
  g_data_plane.store(new DataPlane(listen_fd, self, std::move(options)), std::memory_order_release);
  std::atexit(FlushAtExit);
}

DataPlane& DefaultDataPlane() {
  DataPlane* plane = g_data_plane.load(std::memory_order_acquire);
  if (plane == nullptr) {
    std::fprintf(stderr,
                 "constellation: a channel was used before the data plane started: call constellation::init() "
                 "first thing in main()\n");
    std::abort();
  }
  return *plane;
}

}  // namespace constellation::net
