#include "daemon/metrics/http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/metrics/text_format.h"

namespace constellation::daemon::metrics {

namespace {

// "host:port" -> host, port; the host may be a name or a dotted quad.
absl::Status SplitHostPort(const std::string& host_port, std::string* host, uint16_t* port) {
  size_t colon = host_port.rfind(':');
  uint32_t number = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(host_port.substr(colon + 1), &number) ||
      number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics: expected HOST:PORT such as 127.0.0.1:9464 (port 0: any free port), got \"", host_port, "\""));
  }
  *host = host_port.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);  // [v6]
  *port = static_cast<uint16_t>(number);
  return absl::OkStatus();
}

// The port the listening socket got (for port 0).
int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host_port,
                                                                    const Registry* registry, Options options) {
  std::string host;
  uint16_t port = 0;
  if (absl::Status split = SplitHostPort(host_port, &host, &port); !split.ok()) return split;
  std::unique_ptr<MetricsServer> server(new MetricsServer(registry));
  server->base_ = event_base_new();
  if (server->base_ == nullptr) return absl::InternalError("metrics: event_base_new failed");
  server->http_ = evhttp_new(server->base_);
  if (server->http_ == nullptr) return absl::InternalError("metrics: evhttp_new failed");
  evhttp_set_allowed_methods(server->http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_max_headers_size(server->http_, kMaxHeaderBytes);
  evhttp_set_max_body_size(server->http_, 0);
  timeval timeout = absl::ToTimeval(options.timeout);
  evhttp_set_timeout_tv(server->http_, &timeout);
  evhttp_set_gencb(server->http_, &MetricsServer::OnRequest, server.get());
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(server->http_, host.c_str(), port);
  if (bound == nullptr) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", host_port, ": ", strerror(errno)));
  }
  int bound_port = BoundPort(evhttp_bound_socket_get_fd(bound));
  if (bound_port < 0) return absl::InternalError(absl::StrCat("metrics: getsockname: ", strerror(errno)));
  server->address_ = absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", bound_port);

  server->stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (server->stop_fd_ < 0) return absl::InternalError(absl::StrCat("metrics: eventfd: ", strerror(errno)));
  server->stop_event_ = event_new(
      server->base_, server->stop_fd_, EV_READ,
      [](evutil_socket_t, short, void* base) { event_base_loopbreak(static_cast<event_base*>(base)); }, server->base_);
  if (server->stop_event_ == nullptr || event_add(server->stop_event_, nullptr) != 0) {
    return absl::InternalError("metrics: cannot watch the stop eventfd");
  }
  event_base* base = server->base_;
  server->thread_ = std::thread([base] { event_base_dispatch(base); });
  return server;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd_, &one, sizeof(one));  // cannot fail short of a full counter
    (void)ignored;
    thread_.join();
  }
  // The loop has stopped: nothing of it runs while it is taken apart.
  if (stop_event_ != nullptr) event_free(stop_event_);
  if (http_ != nullptr) evhttp_free(http_);  // closes the listener and every connection
  if (base_ != nullptr) event_base_free(base_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void MetricsServer::OnRequest(evhttp_request* request, void* self) {
  static_cast<MetricsServer*>(self)->Answer(request);
}

void MetricsServer::Answer(evhttp_request* request) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
  const char* path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  if (path == nullptr || strcmp(path, "/metrics") != 0) {
    evhttp_send_error(request, HTTP_NOTFOUND, "only /metrics is served here");
    return;
  }
  std::string text = registry_->Render();
  evbuffer* body = evbuffer_new();
  if (body == nullptr) {
    evhttp_send_error(request, HTTP_INTERNAL, nullptr);
    return;
  }
  evbuffer_add(body, text.data(), text.size());
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Content-Type", kContentType);
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evhttp_send_reply(request, HTTP_OK, "OK", body);
  evbuffer_free(body);
}

}  // namespace constellation::daemon::metrics
