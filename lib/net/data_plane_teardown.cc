// DataPlane: idle teardown, peer failure, exit flush and the process-wide
// instance. Split from data_plane.cc for size; same class, same rules.
#include <sys/ioctl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
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
    FailPeer(remote,
             absl::UnavailableError(absl::StrCat("process ", remote.to_string(), " is gone (", why.message(), ")")));
    return;
  }
  if (it != loop_peers_.end() && it->second.dialing == link) {
    FailPeer(remote, absl::UnavailableError(absl::StrCat("cannot connect to process ", remote.to_string(), " at ",
                                                         remote.to_full_string(), ": ", why.message())));
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

void DataPlane::FailPeer(const Pid& remote, absl::Status status) {
  LoopPeer& lp = loop_peers_[remote];
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

void DataPlane::CheckFlushed() {
  if (!exiting_ || flush_timer_ == nullptr) return;
  bool done = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [pid, entry] : peers_) {
      if (entry.peer->HasOutgoing()) done = false;
    }
  }
  for (auto& [pid, lp] : loop_peers_) {
    int unacked = 0;
    if (done && lp.link != nullptr && ioctl(lp.link->fd(), TIOCOUTQ, &unacked) == 0 && unacked > 0) done = false;
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

void FlushAtExit() {
  DataPlane* plane = g_data_plane.load(std::memory_order_acquire);
  if (plane != nullptr && !plane->FlushForExit(plane->options().exit_flush_timeout)) {
    std::fprintf(stderr, "constellation: exit: some channel data could not be delivered within %s\n",
                 absl::FormatDuration(plane->options().exit_flush_timeout).c_str());
  }
}

}  // namespace

void StartDataPlane(int listen_fd, const Pid& self, std::string secret) {
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
