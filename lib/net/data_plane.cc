#include "lib/net/data_plane.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace constellation::net {
namespace {

int Seconds(absl::Duration d) { return std::max(1, static_cast<int>(absl::ToInt64Seconds(d))); }

// No Nagle (frames are written whole, in batches), and keepalive so that a
// connection to a host that vanished fails instead of looking alive for ever.
void ConfigureSocket(int fd, const DataPlane::Options& options) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = Seconds(options.keepalive_idle);
  int interval = Seconds(options.keepalive_interval);
  int count = std::max(1, options.keepalive_count);
  unsigned user_timeout = static_cast<unsigned>(absl::ToInt64Milliseconds(options.user_timeout));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

// Errors that mean "this process ran out of something", not "the peer is gone".
bool IsExhaustion(int error) { return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM; }

}  // namespace

DataPlane::DataPlane(int listen_fd, const Pid& self, Options options)
    : self_(self),
      options_(options),
      credentials_{self, options.secret},
      listen_fd_(listen_fd),
      loop_(std::make_unique<EventLoop>()) {
  fcntl(listen_fd_.get(), F_SETFL, fcntl(listen_fd_.get(), F_GETFL) | O_NONBLOCK);
  fcntl(listen_fd_.get(), F_SETFD, FD_CLOEXEC);
  loop_->Post([this] {
    listen_event_ =
        std::make_unique<Event>(*loop_, listen_fd_.get(), EV_READ | EV_PERSIST, [this](short) { OnAcceptable(); });
    listen_event_->Add();
  });
}

DataPlane::~DataPlane() {
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  loop_->Post([&] {
    Shutdown();
    std::lock_guard<std::mutex> lock(done_mu);
    done = true;
    done_cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }
  loop_.reset();
  listen_fd_.reset();
}

void DataPlane::Shutdown() {
  absl::Status status = absl::CancelledError("the data plane was shut down");
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [pid, entry] : peers_) {
      entry.peer->Detach();
      entry.peer->Fail(status);
    }
  }
  listen_event_.reset();
  flush_timer_.reset();
  accept_timer_.reset();
  watched_fds_.clear();
  unauthenticated_.clear();
  loop_peers_.clear();
  links_.clear();
  dead_links_.clear();
  dead_events_.clear();
}

// ---- Channels ----

std::shared_ptr<Peer> DataPlane::NewPeer(const Pid& remote) {
  Peer::Hooks hooks;
  hooks.want_write = [this](const Pid& pid) {
    loop_->Post([this, pid] {
      auto it = loop_peers_.find(pid);
      if (it != loop_peers_.end() && it->second.link != nullptr) it->second.link->ArmWrite();
    });
  };
  hooks.want_flush = [this](const Pid& pid) { loop_->Post([this, pid] { FlushPeer(pid); }); };
  hooks.resume_read = [this](const Pid& pid) {
    loop_->Post([this, pid] {
      auto it = loop_peers_.find(pid);
      if (it != loop_peers_.end() && it->second.link != nullptr) it->second.link->ResumeRead();
    });
  };
  // What a user thread holding the read role found; ignored once that
  // connection is no longer the peer's open one.
  hooks.control = [this](const Pid& pid, uint64_t conn, const FrameHeader& header) {
    loop_->Post([this, pid, conn, header] {
      if (Link* link = OpenLink(pid, conn)) OnControl(link, header, std::string_view());
    });
  };
  hooks.lease = [this](const Pid& pid, uint64_t conn) {
    loop_->Post([this, pid, conn] {
      if (Link* link = OpenLink(pid, conn)) link->StartLease();
    });
  };
  hooks.read_down = [this](const Pid& pid, uint64_t conn, absl::Status why) {
    loop_->Post([this, pid, conn, why = std::move(why)] {
      if (Link* link = OpenLink(pid, conn)) OnLinkDown(link, why);
    });
  };
  return std::make_shared<Peer>(remote, options_.limits, std::move(hooks));
}

std::shared_ptr<Peer> DataPlane::Acquire(const Pid& remote, Direction direction, std::string_view type_name) {
  const char* what = direction == Direction::kSend ? "Sender" : "Receiver";
  if (remote == self_) {
    std::fprintf(stderr, "constellation: a %s<%.*s> to pid() itself (%s): a process cannot open a channel to itself\n",
                 what, static_cast<int>(type_name.size()), type_name.data(), self_.to_string().c_str());
    std::abort();
  }
  if (remote.is_null()) {
    std::fprintf(stderr, "constellation: a %s<%.*s> to the null Pid\n", what, static_cast<int>(type_name.size()),
                 type_name.data());
    std::abort();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Entry& entry = peers_[remote];
  bool& taken = direction == Direction::kSend ? entry.has_sender : entry.has_receiver;
  if (taken) {
    std::fprintf(stderr,
                 "constellation: a second live %s to process %s (this %s<%.*s>): a process may hold at most one "
                 "Sender and one Receiver per remote pid at a time; destroy the first before creating another\n",
                 what, remote.to_string().c_str(), what, static_cast<int>(type_name.size()), type_name.data());
    std::abort();
  }
  taken = true;
  ++entry.endpoints;
  if (entry.peer == nullptr) {
    entry.peer = NewPeer(remote);
    auto dead = dead_.find(remote);
    if (dead != dead_.end()) {
      entry.peer->Fail(dead->second);
    } else {
      loop_->Post([this, remote] {
        Watch(remote);
        Connect(remote);
      });
    }
  }
  return entry.peer;
}

void DataPlane::Release(const Pid& remote, Direction direction) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(remote);
  if (it == peers_.end()) return;
  (direction == Direction::kSend ? it->second.has_sender : it->second.has_receiver) = false;
  if (--it->second.endpoints == 0) loop_->Post([this, remote] { CheckIdle(remote); });
}

Link* DataPlane::OpenLink(const Pid& remote, uint64_t conn) {
  auto it = loop_peers_.find(remote);
  if (it == loop_peers_.end()) return nullptr;
  Link* link = it->second.link;
  if (link == nullptr || link->id() != conn || link->stage() != Link::Stage::kOpen) return nullptr;
  return link;
}

std::shared_ptr<Peer> DataPlane::FindPeer(const Pid& remote, int* endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(remote);
  if (it == peers_.end()) return nullptr;
  if (endpoints != nullptr) *endpoints = it->second.endpoints;
  return it->second.peer;
}

void DataPlane::MaybeForget(const Pid& remote) {
  auto lp = loop_peers_.find(remote);
  if (lp != loop_peers_.end() && (lp->second.link || lp->second.dialing || !lp->second.deferred.empty())) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(remote);
    if (it != peers_.end()) {
      Peer& peer = *it->second.peer;
      if (it->second.endpoints > 0 || peer.HasOutgoing() || !peer.InboundEmpty()) return;
      peers_.erase(it);
    }
  }
  if (lp != loop_peers_.end()) {
    Bury(std::move(lp->second.idle_timer));
    Bury(std::move(lp->second.retry_timer));
    loop_peers_.erase(lp);
  }
}

// ---- Connection set-up ----

void DataPlane::OnAcceptable() {
  // A few at a time (the event is level-triggered): under a flood, the
  // hellos already under way get their turn between batches.
  for (int budget = 16; budget > 0; --budget) {
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (IsExhaustion(errno)) {
        RestListener(errno);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        std::fprintf(stderr, "constellation: accept: %s\n", std::strerror(errno));
      }
      return;
    }
    if (credentials_.secret.size() != kSecretSize) {  // fail closed
      close(fd);
      continue;
    }
    ConfigureSocket(fd, options_);
    auto link = std::make_unique<Link>(*loop_, UniqueFd(fd), Link::Role::kAcceptor, Pid(), this, credentials_,
                                       options_.hello_timeout, options_.handshake_timeout, StallTimeout());
    if (!link->usable()) {  // closes the connection: its dialer tries again
      RestListener(errno);
      return;
    }
    Link* accepted = link.get();
    links_.emplace(accepted, std::move(link));
    AdmitUnauthenticated(accepted);
  }
}

void DataPlane::AdmitUnauthenticated(Link* link) {
  // Evicting the oldest (not refusing the newest) means a flood must keep
  // arriving faster than a real dialer's hello completes to keep it out,
  // whereas refusing would let a few dozen idle connections, renewed every
  // hello_timeout, lock every real peer out. An evicted dialer is told kBusy
  // and dials again.
  while (unauthenticated_.size() >= std::max<size_t>(options_.max_unauthenticated, 1)) {
    Link* oldest = unauthenticated_.front();
    oldest->SendBusy();
    ++evicted_;
    OnLinkDown(oldest, absl::UnavailableError("evicted: too many connections proving themselves"));
  }
  unauthenticated_.push_back(link);
  unauthenticated_count_ = unauthenticated_.size();
}

void DataPlane::ForgetUnauthenticated(Link* link) {
  auto it = std::find(unauthenticated_.begin(), unauthenticated_.end(), link);
  if (it == unauthenticated_.end()) return;
  unauthenticated_.erase(it);
  unauthenticated_count_ = unauthenticated_.size();
}

void DataPlane::Connect(const Pid& remote) {
  std::shared_ptr<Peer> peer = FindPeer(remote, nullptr);
  if (peer == nullptr || peer->failed()) return;
  LoopPeer& lp = loop_peers_[remote];
  if (lp.link || lp.dialing || !lp.deferred.empty()) return;
  if (credentials_.secret.size() != kSecretSize) {  // fail closed
    FailPeer(remote, absl::FailedPreconditionError(absl::StrCat(
                         "cannot connect to process ", remote.to_string(),
                         ": this process has no deployment secret (it was not started by init() or a node agent)")));
    return;
  }
  int fd = socket(remote.is_ipv4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (IsExhaustion(errno)) {
      ReportExhausted(remote, "socket", errno);
    } else {
      DialFailed(remote, absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno))));
    }
    return;
  }
  ConfigureSocket(fd, options_);
  sockaddr_storage addr{};
  socklen_t len;
  if (remote.is_ipv4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(remote.port());
    std::memcpy(&in->sin_addr, remote.addr().data() + 12, 4);
    len = sizeof(*in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(remote.port());
    std::memcpy(&in6->sin6_addr, remote.addr().data(), 16);
    len = sizeof(*in6);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd);
    if (IsExhaustion(error)) {
      ReportExhausted(remote, "connect", error);
      return;
    }
    DialFailed(remote, absl::UnavailableError(std::strerror(error)));
    return;
  }
  auto link = std::make_unique<Link>(*loop_, UniqueFd(fd), Link::Role::kDialer, remote, this, credentials_,
                                     options_.handshake_timeout, options_.handshake_timeout, StallTimeout());
  if (!link->usable()) {
    int error = errno;
    link.reset();
    ReportExhausted(remote, "epoll_create", error);
    return;
  }
  lp.dialing = link.get();
  link->WaitConnected();
  links_.emplace(link.get(), std::move(link));
}

void DataPlane::OnConnected(Link* link) {
  absl::Status status = link->SendDial();
  if (!status.ok()) OnLinkDown(link, status);
}

bool DataPlane::Reply(Link* link, HelloKind kind) {
  absl::Status status = link->SendVerdict(kind);
  if (status.ok()) return true;
  OnLinkDown(link, status);
  return false;
}

void DataPlane::OnHello(Link* link, const Hello& hello) {
  if (link->role() == Link::Role::kAcceptor) {
    // The dialer proved it holds the secret: it is one of ours from here on.
    ForgetUnauthenticated(link);
    if (hello.kind != HelloKind::kDial || hello.from.is_null() || hello.from == self_) {
      OnLinkDown(link, absl::InvalidArgumentError("unexpected hello"));
      return;
    }
    link->set_remote(hello.from);
    if (hello.to != self_) {
      Reply(link, HelloKind::kWrongPid);
      OnLinkDown(link, absl::InvalidArgumentError(
                           absl::StrCat("it dialled ", hello.to.to_full_string(), ", not this process")));
      return;
    }
    HandleIncoming(link);
    return;
  }
  const Pid remote = link->remote();
  LoopPeer& lp = loop_peers_[remote];
  if (lp.dialing != link) {
    KillLink(link);
    return;
  }
  lp.dialing = nullptr;
  if (hello.kind != HelloKind::kBusy) {
    lp.busy_since = absl::InfiniteFuture();
    lp.busy_retries = 0;
  }
  switch (hello.kind) {
    case HelloKind::kBusy:
      OnBusy(link);
      return;
    case HelloKind::kAccept:
      if (hello.from != remote) {
        KillLink(link);
        FailPeer(remote, absl::UnavailableError(absl::StrCat("process ", remote.to_string(),
                                                             " has exited (its port now belongs to process ",
                                                             hello.from.to_string(), ")")));
        return;
      }
      Activate(link);
      return;
    case HelloKind::kTieBreak:
      // The peer is dialing us too and its connection wins; it arrives through accept.
      KillLink(link);
      if (!lp.retry_timer) {
        lp.retry_timer = std::make_unique<Event>(*loop_, -1, 0, [this, remote](short) { Connect(remote); });
      }
      lp.retry_timer->AddTimeout(options_.tie_break_retry);
      return;
    case HelloKind::kExiting:
      KillLink(link);
      if (verdicts()) {
        // Its verdict follows and says how it ended (its exit code): until
        // then this is a dial that failed.
        DialFailed(remote, absl::UnavailableError("it is exiting"));
        return;
      }
      FailPeer(remote, absl::UnavailableError(absl::StrCat("process ", remote.to_string(), " has exited")));
      return;
    default:
      KillLink(link);
      FailPeer(remote, absl::UnavailableError(absl::StrCat("process ", remote.to_string(), " has exited")));
      return;
  }
}

void DataPlane::OnBusy(Link* link) {
  // The peer had too many connections proving themselves and evicted ours
  // (a flood, perhaps). Not a verdict on the peer: dial again, backing off,
  // for as long as a slow handshake would have been allowed.
  const Pid remote = link->remote();
  LoopPeer& lp = loop_peers_[remote];
  KillLink(link);
  absl::Time now = absl::Now();
  if (lp.busy_since == absl::InfiniteFuture()) lp.busy_since = now;
  if (!verdicts() && now - lp.busy_since >= options_.handshake_timeout) {
    FailPeer(remote, absl::UnavailableError(absl::StrCat("cannot connect to process ", remote.to_string(), " at ",
                                                         remote.to_full_string(), ": it stayed busy for ",
                                                         absl::FormatDuration(options_.handshake_timeout))));
    return;
  }
  absl::Duration delay = std::min(absl::Milliseconds(1) * (1 << std::min(lp.busy_retries, 8)), absl::Milliseconds(200));
  ++lp.busy_retries;
  if (!lp.retry_timer) {
    lp.retry_timer = std::make_unique<Event>(*loop_, -1, 0, [this, remote](short) { Connect(remote); });
  }
  lp.retry_timer->AddTimeout(delay);
}

void DataPlane::HandleIncoming(Link* link) {
  const Pid remote = link->remote();
  if (exiting_) {
    // What arrives now is dropped (FlushForExit): a connection is worth taking
    // only to deliver what this process still has for the dialer. Otherwise
    // the dialer (which redials once the flush ended our connection) learns
    // that this process is going, instead of sending into the void: it then
    // waits for our verdict, or fails its channels at once without verdicts.
    std::shared_ptr<Peer> peer = FindPeer(remote, nullptr);
    if (peer == nullptr || !peer->HasOutgoing()) {
      if (Reply(link, HelloKind::kExiting)) KillLink(link);
      return;
    }
  }
  LoopPeer& lp = loop_peers_[remote];
  if (lp.link != nullptr) {
    if (lp.closing != Closing::kNone) {
      // The old connection is closing; reading the new one first could reorder a channel.
      link->Defer();
      lp.deferred.push_back(link);
      return;
    }
    // The loser of a simultaneous connect whose winner is already open: expected, drop quietly.
    if (!Reply(link, HelloKind::kTieBreak)) return;
    if (remote < self_)
      OnLinkDown(link, absl::InternalError("a connection is already open"));
    else
      KillLink(link);
    return;
  }
  if (lp.dialing != nullptr) {
    // Simultaneous first use: the connection dialled by the lower Pid wins.
    if (remote < self_) {
      KillLink(lp.dialing);
      lp.dialing = nullptr;
    } else {
      if (Reply(link, HelloKind::kTieBreak)) KillLink(link);
      return;
    }
  }
  std::shared_ptr<Peer> peer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_.contains(remote)) {
      peer = nullptr;
    } else {
      Entry& entry = peers_[remote];
      if (entry.peer == nullptr) entry.peer = NewPeer(remote);
      peer = entry.peer;
    }
  }
  if (peer == nullptr) {
    OnLinkDown(link, absl::FailedPreconditionError("that process was already declared gone"));
    return;
  }
  Watch(remote);
  if (!Reply(link, HelloKind::kAccept)) return;
  Activate(link);
}

void DataPlane::Activate(Link* link) {
  const Pid remote = link->remote();
  std::shared_ptr<Peer> peer = FindPeer(remote, nullptr);
  LoopPeer& lp = loop_peers_[remote];
  absl::Status status = link->Open(peer);
  if (!status.ok()) {  // out of kernel memory to watch it: not the peer's fault
    KillLink(link);
    ReportExhausted(remote, "epoll_ctl", ENOMEM);
    return;
  }
  lp.link = link;
  lp.closing = Closing::kNone;
  lp.redial_delay = absl::ZeroDuration();
  if (lp.retry_timer) lp.retry_timer->Del();
  SetOpen(+1);
  if (!lp.pending_loss.ok()) peer->ReportOnce(std::exchange(lp.pending_loss, absl::OkStatus()));
  if (peer->Attach(link->fd()) == Peer::WriteResult::kBlocked) link->ArmWrite();
  CheckIdle(remote);
  if (exiting_) CheckFlushed();  // what waited for this connection may all be written now
}

void DataPlane::SetOpen(int delta) {
  std::lock_guard<std::mutex> lock(state_mu_);
  open_ += delta;
  if (delta > 0) ++opened_;
  state_cv_.notify_all();
}

bool DataPlane::WaitForOpenConnections(size_t n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(state_mu_);
  return WaitUntil(state_cv_, lock, absl::Now() + timeout, [&] { return open_.load() == n; });
}

// ---- Traffic ----

void DataPlane::OnWritable(Link* link) {
  if (link->peer()->Flush() == Peer::WriteResult::kBlocked) link->ArmWrite();
  if (exiting_) CheckFlushed();
}

void DataPlane::FlushPeer(const Pid& remote) {
  auto it = loop_peers_.find(remote);
  if (it == loop_peers_.end() || it->second.link == nullptr) return;
  if (it->second.link->peer()->Flush() == Peer::WriteResult::kBlocked) it->second.link->ArmWrite();
  if (exiting_) CheckFlushed();
}

void DataPlane::OnControl(Link* link, const FrameHeader& header, std::string_view payload) {
  const Pid remote = link->remote();
  LoopPeer& lp = loop_peers_[remote];
  Peer& peer = *link->peer();
  switch (header.kind) {
    case FrameKind::kOpen:
      peer.SetTypeName(header.fingerprint, std::string(payload));
      return;
    case FrameKind::kClose: {
      if (lp.closing == Closing::kCloseSent) {  // both closed at once: each Close acknowledges the other
        CloseGracefully(remote);
        return;
      }
      int endpoints = 0;
      FindPeer(remote, &endpoints);
      if (!exiting_ && endpoints == 0 && peer.QueueIfIdle(FrameKind::kCloseAck)) {
        lp.closing = Closing::kAckSent;
      } else {
        peer.QueueControl(FrameKind::kCloseNak);
      }
      FlushPeer(remote);
      return;
    }
    case FrameKind::kCloseAck:
      if (lp.closing == Closing::kCloseSent) {
        CloseGracefully(remote);
      } else {
        OnLinkDown(link, absl::InternalError("unexpected close-ack"));
      }
      return;
    case FrameKind::kCloseNak:
      if (lp.closing == Closing::kCloseSent) {
        lp.closing = Closing::kNone;
        peer.EndHold();
        FlushPeer(remote);
        CheckIdle(remote);
      }
      return;
    case FrameKind::kData:
      return;  // not a control frame
  }
}

}  // namespace constellation::net
