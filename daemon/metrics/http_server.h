#pragma once

// MetricsServer: serves a Registry at GET /metrics over HTTP (libevent's
// evhttp), on a thread of its own, so a scrape never waits on the daemon's
// work and the daemon never waits on a scrape (it renders atomics, and the
// collectors take their owners' locks briefly).
//
// Requests are hostile until answered: only GET (and HEAD) are accepted,
// only the path /metrics answers 200, every other path 404; a request's
// headers are bounded (kMaxHeaderBytes: larger is refused), a body is refused,
// and a connection that stalls is closed after the timeout.
//
// Ownership: the registry must outlive the server. Threading: Start and the
// destructor from any one thread (not the server's); the destructor stops
// the thread, closing the listening socket and every connection.

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/metrics/registry.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_request;

namespace constellation::daemon::metrics {

class MetricsServer {
 public:
  static constexpr size_t kMaxHeaderBytes = 8192;
  struct Options {
    absl::Duration timeout = absl::Seconds(10);  // a connection idle this long is closed
  };

  // Listens on `host_port` ("127.0.0.1:9100", port 0 for any free port).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& host_port, const Registry* registry,
                                                              Options options);
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& host_port, const Registry* registry) {
    return Start(host_port, registry, Options());
  }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "HOST:PORT" it listens on (the port chosen when 0 was asked).
  const std::string& address() const { return address_; }

 private:
  explicit MetricsServer(const Registry* registry) : registry_(registry) {}
  static void OnRequest(evhttp_request* request, void* self);
  void Answer(evhttp_request* request);

  const Registry* const registry_;
  std::string address_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  int stop_fd_ = -1;             // eventfd: written by the destructor
  event* stop_event_ = nullptr;  // reads stop_fd_ on the server's thread, breaks its loop
  std::thread thread_;
};

}  // namespace constellation::daemon::metrics
