#include "lib/net/link.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace constellation::net {
namespace {

// Bytes read per readiness callback before other connections get a turn.
constexpr size_t kReadBudget = 1 << 20;

std::atomic<uint64_t> g_next_link_id{1};

}  // namespace

Link::Link(EventLoop& loop, UniqueFd fd, Role role, const Pid& remote, LinkOwner* owner, const Credentials& credentials,
           absl::Duration hello_timeout, absl::Duration handshake_timeout, absl::Duration stall_timeout)
    : loop_(loop),
      fd_(std::move(fd)),
      id_(g_next_link_id.fetch_add(1, std::memory_order_relaxed)),
      role_(role),
      remote_(remote),
      owner_(owner),
      stage_(role == Role::kDialer ? Stage::kConnecting : Stage::kHello),
      read_event_(loop, fd_.get(), EV_READ | EV_PERSIST, [this](short) { OnHelloReadable(); }),
      write_event_(loop, fd_.get(), EV_WRITE,
                   [this](short) {
                     if (stage_ == Stage::kConnecting) {
                       int error = 0;
                       socklen_t len = sizeof(error);
                       getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len);
                       if (error != 0) {
                         Fail(absl::UnavailableError(absl::StrCat("cannot connect: ", std::strerror(error))));
                         return;
                       }
                       owner_->OnConnected(this);
                     } else if (stage_ == Stage::kOpen) {
                       owner_->OnWritable(this);
                     }
                   }),
      timer_(loop, -1, 0,
             [this, hello_timeout](short) {
               absl::Duration bound = authenticated_ ? handshake_timeout_ : hello_timeout;
               Fail(absl::DeadlineExceededError(absl::StrCat("no handshake within ", absl::FormatDuration(bound))));
             }),
      credentials_(credentials),
      handshake_timeout_(handshake_timeout),
      stall_timeout_(stall_timeout),
      awaiting_(role == Role::kDialer ? HelloKind::kChallenge : HelloKind::kDial) {
  // The epoll set the open connection will need, made now: a connection that
  // could not be watched once open must not get as far as its hello.
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) {
    stage_ = Stage::kDead;
    return;
  }
  timer_.AddTimeout(hello_timeout);
  if (role == Role::kAcceptor) read_event_.Add();
}

Link::~Link() {
  frame_event_.reset();  // before its fd
  lease_timer_.reset();
  stall_timer_.reset();
  // fd_ and ep_ close after the events on them (declared before them, they are destroyed after).
}

std::string Link::Describe() const {
  if (remote_.is_null()) return absl::StrCat("connection fd ", fd_.get());
  return absl::StrCat("connection ", role_ == Role::kDialer ? "to " : "from ", remote_.to_string(), " (",
                      remote_.to_full_string(), ")");
}

void Link::WaitConnected() { write_event_.Add(); }

absl::Status Link::Write(const HelloMessage& message) {
  char bytes[kMaxHelloSize];
  size_t size = EncodeHello(message, bytes);
  ssize_t n = send(fd_.get(), bytes, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(size)) {
    return absl::UnavailableError(absl::StrCat("cannot send hello: ", n < 0 ? std::strerror(errno) : "short write"));
  }
  return absl::OkStatus();
}

absl::Status Link::SendDial() {
  dialer_nonce_ = NewNonce();
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  dial.nonce = dialer_nonce_;
  absl::Status status = Write(dial);
  if (!status.ok()) return status;
  stage_ = Stage::kHello;
  read_event_.Add();
  return absl::OkStatus();
}

absl::Status Link::SendVerdict(HelloKind verdict) {
  HelloMessage reply;
  reply.kind = verdict;
  reply.from = credentials_.self;
  reply.mac = VerdictMac(credentials_.secret, dialer_nonce_, acceptor_nonce_, remote_, credentials_.self, verdict);
  return Write(reply);
}

void Link::SendBusy() {
  HelloMessage busy;
  busy.kind = HelloKind::kBusy;
  Write(busy).IgnoreError();
}

absl::Status Link::Open(std::shared_ptr<Peer> peer) {
  peer_ = std::move(peer);
  stage_ = Stage::kOpen;
  timer_.Del();
  read_event_.Del();
  // From here on every read and write of the socket passes MSG_DONTWAIT, but
  // one: a user thread that sleeps in recv itself (Peer::HowToSleep), for
  // which the socket must block.
  const int flags = fcntl(fd_.get(), F_GETFL);
  if (flags < 0 || fcntl(fd_.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("cannot make the connection blocking: ", std::strerror(errno)));
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd_.get();
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd_.get(), &event) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot watch the connection: ", std::strerror(errno)));
  }
  frame_event_ = std::make_unique<Event>(loop_, ep_.get(), EV_READ | EV_PERSIST, [this](short) { OnFramesReadable(); });
  lease_timer_ = std::make_unique<Event>(loop_, -1, 0, [this](short) {
    absl::Duration next = peer_->LeaseTick();
    if (next > absl::ZeroDuration() && stage_ == Stage::kOpen) lease_timer_->AddTimeout(next);
  });
  // Frames right behind the Hello are still in the socket (Hellos are read
  // exactly): the event reports them.
  peer_->AttachRead(fd_.get(), ep_.get(), id_);
  frame_event_->Add();
  if (stall_timeout_ != absl::InfiniteDuration()) {
    stall_timer_ = std::make_unique<Event>(loop_, -1, EV_PERSIST, [this](short) { OnStallTick(); });
    stall_timer_->AddTimeout(stall_timeout_ / 4);
  }
  return absl::OkStatus();
}

void Link::Defer() {
  stage_ = Stage::kDeferred;
  read_event_.Del();
}

void Link::PauseRead() {
  paused_ = true;
  if (frame_event_) frame_event_->Del();
}

void Link::ResumeRead() {
  if (stage_ != Stage::kOpen) return;
  paused_ = false;
  frame_event_->Add();
  // Level-triggered, the event reports bytes in the socket; frames already
  // read into the Peer's buffer need this look.
  OnFramesReadable();
}

void Link::StartLease() {
  if (stage_ == Stage::kOpen) lease_timer_->AddTimeout(peer_->LeaseStart());
}

void Link::ArmWrite() {
  if (stage_ == Stage::kOpen) write_event_.Add();
}

void Link::Kill() {
  stage_ = Stage::kDead;
  read_event_.Del();
  if (frame_event_) frame_event_->Del();
  if (lease_timer_) lease_timer_->Del();
  if (stall_timer_) stall_timer_->Del();
  write_event_.Del();
  timer_.Del();
}

bool Link::Fail(absl::Status why) {
  if (stage_ != Stage::kDead) owner_->OnLinkDown(this, std::move(why));
  return false;
}

void Link::OnHelloReadable() {
  while (stage_ == Stage::kHello) {
    ssize_t n = read(fd_.get(), hello_ + hello_filled_, hello_size_ - hello_filled_);
    if (n == 0) {
      if (hello_filled_ > 0) {
        Fail(absl::DataLossError("connection closed in the middle of a hello"));
      } else {
        Fail(absl::UnavailableError("connection closed"));
      }
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Fail(absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno))));
      return;
    }
    hello_filled_ += n;
    if (hello_filled_ < hello_size_) continue;  // the rest may be there already
    if (hello_size_ == kHelloPrefixSize) {
      absl::StatusOr<size_t> size = DecodeHelloPrefix(hello_);
      if (!size.ok()) {
        Fail(absl::InvalidArgumentError(absl::StrCat("bad handshake: ", size.status().message())));
        return;
      }
      hello_size_ = *size;
      if (hello_filled_ < hello_size_) continue;
    }
    HelloMessage message;
    absl::Status status = DecodeHello(hello_, hello_size_, &message);
    hello_filled_ = 0;
    hello_size_ = kHelloPrefixSize;
    if (!status.ok()) {
      Fail(absl::InvalidArgumentError(absl::StrCat("bad handshake: ", status.message())));
      return;
    }
    if (!OnHelloMessage(message)) return;
  }
}

bool Link::OnHelloMessage(const HelloMessage& m) {
  const std::string& secret = credentials_.secret;
  const Pid& self = credentials_.self;
  if (role_ == Role::kAcceptor && awaiting_ == HelloKind::kDial && m.kind == HelloKind::kDial) {
    dialer_nonce_ = m.nonce;
    acceptor_nonce_ = NewNonce();
    HelloMessage challenge;
    challenge.kind = HelloKind::kChallenge;
    challenge.nonce = acceptor_nonce_;
    challenge.mac = AcceptorMac(secret, dialer_nonce_, acceptor_nonce_);
    absl::Status status = Write(challenge);
    if (!status.ok()) return Fail(status);
    awaiting_ = HelloKind::kProof;
    return true;
  }
  if (role_ == Role::kAcceptor && awaiting_ == HelloKind::kProof && m.kind == HelloKind::kProof) {
    if (!MacEqual(m.mac, DialerMac(secret, dialer_nonce_, acceptor_nonce_, m.from, m.to))) {
      return Fail(absl::PermissionDeniedError("the dialer's proof is wrong (not a process of this deployment)"));
    }
    authenticated_ = true;
    // What is left (a verdict, perhaps a deferral) has the dialer's bound.
    timer_.Del();
    timer_.AddTimeout(handshake_timeout_);
    owner_->OnHello(this, Hello{HelloKind::kDial, m.from, m.to});  // may open, defer or kill the link
    return true;
  }
  if (role_ == Role::kDialer && m.kind == HelloKind::kBusy) {
    owner_->OnHello(this, Hello{HelloKind::kBusy, Pid(), self});
    return true;
  }
  if (role_ == Role::kDialer && awaiting_ == HelloKind::kChallenge && m.kind == HelloKind::kChallenge) {
    acceptor_nonce_ = m.nonce;
    if (!MacEqual(m.mac, AcceptorMac(secret, dialer_nonce_, acceptor_nonce_))) {
      return Fail(absl::PermissionDeniedError(
          "the process at that address failed to prove itself (not a process of this deployment)"));
    }
    HelloMessage proof;
    proof.kind = HelloKind::kProof;
    proof.from = self;
    proof.to = remote_;
    proof.mac = DialerMac(secret, dialer_nonce_, acceptor_nonce_, self, remote_);
    absl::Status status = Write(proof);
    if (!status.ok()) return Fail(status);
    awaiting_ = HelloKind::kAccept;
    return true;
  }
  if (role_ == Role::kDialer && awaiting_ == HelloKind::kAccept && IsVerdict(m.kind)) {
    if (!MacEqual(m.mac, VerdictMac(secret, dialer_nonce_, acceptor_nonce_, self, m.from, m.kind))) {
      return Fail(absl::PermissionDeniedError("the acceptor's verdict failed its proof"));
    }
    owner_->OnHello(this, Hello{m.kind, m.from, self});  // may open or kill the link
    return true;
  }
  return Fail(
      absl::InvalidArgumentError(absl::StrCat("bad handshake: unexpected hello kind ", static_cast<int>(m.kind))));
}

void Link::OnStallTick() {
  if (stage_ != Stage::kOpen) return;
  if (!peer_->mid_frame()) peer_->ReleaseIdleMemory();  // what was quiet for a tick gives back memory
  uint64_t bytes = peer_->bytes_read();
  if (paused_ || !peer_->mid_frame() || bytes != stall_bytes_) {
    stall_bytes_ = bytes;
    stall_ticks_ = 0;
    return;
  }
  // Four ticks in a row with nothing new: stall_timeout without progress.
  if (++stall_ticks_ < 4) return;
  Fail(absl::DataLossError(
      absl::StrCat("no progress in the middle of a frame for ", absl::FormatDuration(stall_timeout_))));
}

void Link::OnFramesReadable() {
  size_t budget = kReadBudget;
  while (stage_ == Stage::kOpen && !paused_) {
    FrameHeader control;
    absl::Status down;
    switch (peer_->LoopRead(&budget, &control, &down)) {
      case Peer::ReadOutcome::kDrained:
        return;
      case Peer::ReadOutcome::kBusy:
        // A user thread reads the socket; it posts resume_read when it lets go.
        frame_event_->Del();
        return;
      case Peer::ReadOutcome::kBroken:
        // Detached, or a user thread saw the end and posted it: nothing to read.
        frame_event_->Del();
        return;
      case Peer::ReadOutcome::kPaused:
        PauseRead();
        return;
      case Peer::ReadOutcome::kControl:
        owner_->OnControl(this, control, std::string_view());  // may kill the link
        continue;
      case Peer::ReadOutcome::kDown:
        Fail(std::move(down));
        return;
    }
  }
}

}  // namespace constellation::net
