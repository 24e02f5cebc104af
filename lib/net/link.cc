#include "lib/net/link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace constellation::net {
namespace {

constexpr size_t kBufferSize = 64 << 10;
// Payload bytes still missing above which we read straight into the payload.
constexpr size_t kDirectRead = 16 << 10;
// Bytes read per readiness callback before other connections get a turn.
constexpr size_t kReadBudget = 1 << 20;

}  // namespace

Link::Link(EventLoop& loop, int fd, Role role, const Pid& remote, LinkOwner* owner, absl::Duration handshake_timeout)
    : loop_(loop),
      fd_(fd),
      role_(role),
      remote_(remote),
      owner_(owner),
      stage_(role == Role::kDialer ? Stage::kConnecting : Stage::kHello),
      read_event_(loop, fd, EV_READ | EV_PERSIST, [this](short) { OnReadable(); }),
      consume_event_(loop, -1, 0,
                     [this](short) {
                       if (stage_ == Stage::kOpen && !paused_) ConsumeBuffered();
                     }),
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
      timer_(loop, -1, 0,
             [this, handshake_timeout](short) {
               Fail(absl::DeadlineExceededError(
                   absl::StrCat("no handshake within ", absl::FormatDuration(handshake_timeout))));
             }),
      buffer_(new char[kBufferSize]) {
  timer_.AddTimeout(handshake_timeout);
  if (role == Role::kAcceptor) read_event_.Add();
}

Link::~Link() { close(fd_); }

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

void Link::Open(std::shared_ptr<Peer> peer) {
  peer_ = std::move(peer);
  stage_ = Stage::kOpen;
  timer_.Del();
  if (!paused_) read_event_.Add();
  // Frames may have arrived right behind the Hello: parse them on the next
  // turn of the loop (not here, inside the Hello's own callback). An Event,
  // not a posted task: it goes with the Link if the Link is killed first.
  if (pos_ < end_) consume_event_.AddTimeout(absl::ZeroDuration());
}

void Link::Defer() {
  stage_ = Stage::kDeferred;
  read_event_.Del();
}

void Link::PauseRead() {
  paused_ = true;
  read_event_.Del();
}

void Link::ResumeRead() {
  if (!paused_ || stage_ != Stage::kOpen) return;
  paused_ = false;
  if (!ConsumeBuffered()) return;
  read_event_.Add();
}

void Link::ArmWrite() {
  if (stage_ == Stage::kOpen) write_event_.Add();
}

void Link::Kill() {
  stage_ = Stage::kDead;
  read_event_.Del();
  write_event_.Del();
  timer_.Del();
  consume_event_.Del();
}

bool Link::Fail(absl::Status why) {
  if (stage_ != Stage::kDead) owner_->OnLinkDown(this, std::move(why));
  return false;
}

void Link::OnReadable() {
  size_t budget = kReadBudget;
  while (stage_ != Stage::kDead && !paused_ && stage_ != Stage::kDeferred) {
    ssize_t n;
    size_t asked;
    if (in_frame_ && pos_ == end_ && header_.length - filled_ >= kDirectRead) {
      asked = header_.length - filled_;
      n = read(fd_, payload_.data() + filled_, asked);
      if (n > 0) filled_ += n;
    } else {
      if (pos_ > 0) {
        std::memmove(buffer_.get(), buffer_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      asked = kBufferSize - end_;
      n = read(fd_, buffer_.get() + end_, asked);
      if (n > 0) end_ += n;
    }
    if (n == 0) {
      if (in_frame_ || pos_ < end_) {
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
    if (!ConsumeBuffered()) return;
    // Level-triggered: when more arrives we are called again. A short read
    // means the socket is drained; asking again would only get EAGAIN.
    if (static_cast<size_t>(n) < asked || static_cast<size_t>(n) >= budget) return;
    budget -= n;
  }
}

bool Link::ConsumeBuffered() {
  while (true) {
    if (stage_ == Stage::kDead || stage_ == Stage::kDeferred || paused_) return false;
    size_t available = end_ - pos_;
    if (stage_ == Stage::kHello) {
      if (available < kHelloSize) return true;
      Hello hello;
      absl::Status status = DecodeHello(buffer_.get() + pos_, &hello);
      if (!status.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("bad handshake: ", status.message())));
      pos_ += kHelloSize;
      owner_->OnHello(this, hello);
      continue;
    }
    if (stage_ != Stage::kOpen) return true;
    if (!in_frame_) {
      if (available < kFrameHeaderSize) return true;
      FrameHeader header;
      absl::Status status = DecodeFrameHeader(buffer_.get() + pos_, &header);
      if (!status.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("bad frame: ", status.message())));
      if (header.kind == FrameKind::kData && !peer_->InboundHasRoom()) {
        PauseRead();
        return false;
      }
      pos_ += kFrameHeaderSize;
      header_ = header;
      payload_.resize(header.length);
      filled_ = 0;
      in_frame_ = true;
      available -= kFrameHeaderSize;
    }
    size_t take = std::min<size_t>(available, header_.length - filled_);
    std::memcpy(payload_.data() + filled_, buffer_.get() + pos_, take);
    pos_ += take;
    filled_ += take;
    if (filled_ < header_.length) return true;
    in_frame_ = false;
    if (header_.kind == FrameKind::kData) {
      peer_->Deliver(header_.fingerprint, &payload_);
    } else {
      owner_->OnControl(this, header_, payload_);
      payload_.clear();
    }
  }
}

}  // namespace constellation::net
