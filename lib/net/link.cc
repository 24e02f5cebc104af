#include "lib/net/link.h"

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

Link::Link(EventLoop& loop, int fd, Role role, const Pid& remote, LinkOwner* owner, absl::Duration handshake_timeout)
    : loop_(loop),
      fd_(fd),
      id_(g_next_link_id.fetch_add(1, std::memory_order_relaxed)),
      role_(role),
      remote_(remote),
      owner_(owner),
      stage_(role == Role::kDialer ? Stage::kConnecting : Stage::kHello),
      read_event_(loop, fd, EV_READ | EV_PERSIST, [this](short) { OnHelloReadable(); }),
      write_event_(loop, fd, EV_WRITE,
                   [this](short) {
                     if (stage_ == Stage::kConnecting) {
                       int error = 0;
                       socklen_t len = sizeof(error);
                       getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
                       if (error != 0) {
                         Fail(absl::UnavailableError(absl::StrCat("cannot connect: ", std::strerror(error))));
                         return;
                       }
                       owner_->OnConnected(this);
                     } else if (stage_ == Stage::kOpen) {
                       owner_->OnWritable(this);
                     }
                   }),
      timer_(loop, -1, 0, [this, handshake_timeout](short) {
        Fail(
            absl::DeadlineExceededError(absl::StrCat("no handshake within ", absl::FormatDuration(handshake_timeout))));
      }) {
  timer_.AddTimeout(handshake_timeout);
  if (role == Role::kAcceptor) read_event_.Add();
}

Link::~Link() {
  frame_event_.reset();  // before its fd
  lease_timer_.reset();
  if (ep_ >= 0) close(ep_);
  close(fd_);
}

std::string Link::Describe() const {
  if (remote_.is_null()) return absl::StrCat("connection fd ", fd_);
  return absl::StrCat("connection ", role_ == Role::kDialer ? "to " : "from ", remote_.to_string(), " (",
                      remote_.to_full_string(), ")");
}

void Link::WaitConnected() { write_event_.Add(); }

absl::Status Link::SendHello(const Hello& hello) {
  char bytes[kHelloSize];
  EncodeHello(hello, bytes);
  ssize_t n = send(fd_, bytes, sizeof(bytes), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(sizeof(bytes))) {
    return absl::UnavailableError(absl::StrCat("cannot send hello: ", n < 0 ? std::strerror(errno) : "short write"));
  }
  if (stage_ == Stage::kConnecting) {
    stage_ = Stage::kHello;
    read_event_.Add();
  }
  return absl::OkStatus();
}

absl::Status Link::Open(std::shared_ptr<Peer> peer) {
  peer_ = std::move(peer);
  stage_ = Stage::kOpen;
  timer_.Del();
  read_event_.Del();
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd_;
  if (ep_ < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, fd_, &event) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot watch the connection: ", std::strerror(errno)));
  }
  frame_event_ = std::make_unique<Event>(loop_, ep_, EV_READ | EV_PERSIST, [this](short) { OnFramesReadable(); });
  lease_timer_ = std::make_unique<Event>(loop_, -1, 0, [this](short) {
    absl::Duration next = peer_->LeaseTick();
    if (next > absl::ZeroDuration() && stage_ == Stage::kOpen) lease_timer_->AddTimeout(next);
  });
  // Frames right behind the Hello are still in the socket (Hellos are read
  // exactly): the event reports them.
  peer_->AttachRead(fd_, ep_, id_);
  frame_event_->Add();
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
  write_event_.Del();
  timer_.Del();
}

bool Link::Fail(absl::Status why) {
  if (stage_ != Stage::kDead) owner_->OnLinkDown(this, std::move(why));
  return false;
}

void Link::OnHelloReadable() {
  while (stage_ == Stage::kHello) {
    ssize_t n = read(fd_, hello_ + hello_filled_, kHelloSize - hello_filled_);
    if (n == 0) {
      if (hello_filled_ > 0) {
        Fail(absl::DataLossError("connection closed in the middle of a frame"));
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
    if (hello_filled_ < kHelloSize) return;
    hello_filled_ = 0;
    Hello hello;
    absl::Status status = DecodeHello(hello_, &hello);
    if (!status.ok()) {
      Fail(absl::InvalidArgumentError(absl::StrCat("bad handshake: ", status.message())));
      return;
    }
    owner_->OnHello(this, hello);  // may open, defer or kill the link
  }
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
