// Cluster benchmark on a loopback cluster (three node daemons and a master with
// the bridge, all on 127.0.0.1 with port 0, each with its own cache dir):
//
//  - deploy: time from starting `cdeploy --format=json` to the first output line
//    reaching cdeploy's stdout, for a 20 MiB binary (examples/hello padded with
//    fresh random bytes, so its SHA-256 is new), first deploy (uploaded to the
//    bridge and to a node), second deploy of the same file (cached) and a
//    third (by then cdeploy remembers the file's SHA-256, cli/hash_cache.h);
//    beside a plain local run of the same file. The first deploy is split into
//    phases by watching the bridge's and the nodes' cache directories with
//    inotify (an upload creates ".upload-<sha>-XXXXXX" and renames it to <sha>;
//    a node on the master's machine adopts the master's copy instead: a hard
//    link ".adopt-<sha>-..." renamed to <sha>, no second write).
//  - spawn on the fabric: bench/spawn_latency --root deployed with cdeploy and
//    paced through cdeploy's stdin; time from spawn() in the root to the child's
//    first line reaching cdeploy, and to its exit being reported (CLOCK_MONOTONIC
//    on both sides: same machine), and when spawn() returned (the root prints
//    it with SPAWN_LATENCY_T1 set); the same measured locally, under the
//    root's own bridge.
//  - references: a gRPC unary round trip to a node daemon, and a bare
//    posix_spawn of spawn_latency --bare (what starting that binary costs).
//
//   bazel run -c opt //bench:cluster_bench [-- --quick] [-- --runs=N --spawns=N]
//
// (//cli:cdeploy and //examples:hello are private to their packages; until
// they are visible to //bench, add --nocheck_visibility to that command.)
//
// Every wait is bounded; every process it starts leads its own process group
// and dies with the benchmark (PR_SET_PDEATHSIG, and a watchdog alarm).
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "bench/bench_support.h"
#include "bench/cluster_bench_support.h"
#include "daemon/binary_cache.h"
#include "daemon/security/credentials.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

extern char** environ;

namespace {

constexpr uint64_t kBinarySize = 20ull << 20;  // 20 MiB
constexpr int kDirs = 4;                       // 0: the bridge's cache, 1..3: the nodes'

using namespace cluster_bench;

// ---------------------------------------------------------------------------
// The benchmark.

struct Bench {
  std::string daemon_bin, cdeploy_bin, hello_bin, spawn_bin;
  std::string dir;  // the temp dir
  std::vector<Proc> daemons;
  std::vector<std::string> daemon_names;
  std::vector<std::string> node_addrs;
  std::string bridge;
  int inotify = -1;
  int wd[kDirs] = {-1, -1, -1, -1};

  [[noreturn]] void Fatal(const char* format, ...) {
    va_list args;
    va_start(args, format);
    fputs("cluster_bench: ", stderr);
    vfprintf(stderr, format, args);
    fputs("\n", stderr);
    va_end(args);
    std::vector<std::string> logs = daemon_names;  // the temp dir goes: show its logs here
    for (const char* name : {"cdeploy", "cdeploy-spawn", "local", "local-spawn"}) logs.push_back(name);
    for (const std::string& name : logs) {
      std::ifstream log(dir + "/" + name + ".log");
      std::stringstream text;
      text << log.rdbuf();
      if (!text.str().empty()) fprintf(stderr, "--- %s.log:\n%s", name.c_str(), text.str().c_str());
    }
    Teardown();
    exit(1);
  }

  void Teardown() {
    for (Proc& d : daemons) {
      if (d.pid > 0) kill(d.pid, SIGTERM);
    }
    int64_t deadline = NowNs() + 5'000'000'000;
    for (size_t i = 0; i < daemons.size(); ++i) {
      int left = static_cast<int>(std::max<int64_t>(0, (deadline - NowNs()) / 1000000));
      if (daemons[i].pid > 0 && !Finish(daemons[i], left)) {
        fprintf(stderr, "cluster_bench: %s did not stop on SIGTERM within 5 s; killed\n", daemon_names[i].c_str());
      }
    }
    for (auto& slot : g_groups) {  // anything else still running (a cdeploy on a failure path)
      if (slot > 0) {
        kill(-slot, SIGKILL);
        waitpid(slot, nullptr, 0);
        slot = 0;
      }
    }
    if (inotify >= 0) close(inotify);
    inotify = -1;
    if (!dir.empty()) {
      nftw(
          dir.c_str(), [](const char* path, const struct stat*, int, FTW*) { return remove(path); }, 16,
          FTW_DEPTH | FTW_PHYS);
    }
  }

  // Starts a daemon and reads its stdout until it has printed every line in
  // `wanted` ("node", "master", "bridge"); returns their addresses.
  std::vector<std::string> StartDaemon(const std::string& name, std::vector<std::string> args,
                                       const std::vector<std::string>& wanted) {
    args.insert(args.begin(), daemon_bin);
    if (geteuid() == 0) args.push_back("--run-as=root");  // as the tests: root, to measure as before
    daemon_names.push_back(name);
    daemons.push_back(Start(args, {}, false, dir + "/" + name + ".log", SIGTERM));
    Lines lines(daemons.back().out);
    std::vector<std::string> found;
    int64_t deadline = NowNs() + 30'000'000'000;
    std::string line;
    while (found.size() < wanted.size()) {
      int r = lines.Next(&line, deadline);
      if (r <= 0) Fatal("%s: %s before it was ready", name.c_str(), r == 0 ? "exited" : "30 s passed");
      std::string prefix = "constellation: " + wanted[found.size()] + " listening on ";
      if (line.rfind(prefix, 0) == 0) found.push_back(line.substr(prefix.size()));
    }
    return found;
  }

  // The cluster runs the documented secure way: a CA in the temp dir, a
  // bundle per role (daemon/security/ca.h), mutual TLS everywhere.
  std::string Bundle(const std::string& name) const { return dir + "/ca/" + name; }
  void MakePki() {
    std::vector<std::vector<std::string>> commands = {
        {daemon_bin, "ca", "init", dir + "/ca"},
        {daemon_bin, "ca", "issue", dir + "/ca", "node", "--role=node", "--host=127.0.0.1"},
        {daemon_bin, "ca", "issue", dir + "/ca", "master", "--role=master", "--host=127.0.0.1"},
        {daemon_bin, "ca", "issue", dir + "/ca", "client", "--role=client"}};
    for (const std::vector<std::string>& command : commands) {
      std::vector<char*> argv;
      for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      pid_t pid;
      int status = 0;
      if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0 || waitpid(pid, &status, 0) != pid ||
          status != 0) {
        Fatal("constellation ca %s failed", command[2].c_str());
      }
    }
  }

  void StartCluster() {
    MakePki();
    const char* caps[3][2] = {{"2 GiB", "2"}, {"1 GiB", "1"}, {"512 MiB", "0.5"}};
    for (int i = 1; i <= 3; ++i) {
      std::string name = "node" + std::to_string(i);
      node_addrs.push_back(StartDaemon(
          name, {"127.0.0.1:0", "--cache-dir=" + dir + "/" + name, "--tls=" + Bundle("node")}, {"node"})[0]);
    }
    std::string toml;
    for (int i = 0; i < 3; ++i) {
      toml += "[[nodes]]\nfabric_addr = \"" + node_addrs[i] + "\"\n";
      if (i == 0) toml += "bridge_bind = \"127.0.0.1:0\"\n";
      toml += std::string("mem = \"") + caps[i][0] + "\"\ncpu = " + caps[i][1] + "\n\n";
    }
    std::ofstream(dir + "/nodes.toml") << toml;
    bridge = StartDaemon(
        "master", {"127.0.0.1:0", dir + "/nodes.toml", "--cache-dir=" + dir + "/master", "--tls=" + Bundle("master")},
        {"master", "bridge"})[1];
    inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    std::string dirs[kDirs] = {dir + "/master/master", dir + "/node1/node", dir + "/node2/node", dir + "/node3/node"};
    for (int i = 0; i < kDirs; ++i) {
      wd[i] =
          inotify_add_watch(inotify, dirs[i].c_str(), IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE);
      if (wd[i] < 0) Fatal("inotify_add_watch %s: %s", dirs[i].c_str(), strerror(errno));
    }
  }

  // A copy of examples/hello padded with fresh random bytes to 20 MiB.
  std::string MakeBinary(int index) {
    std::ifstream in(hello_bin, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty() || bytes.size() > kBinarySize) Fatal("cannot read %s", hello_bin.c_str());
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) seed = NowNs();
    std::mt19937_64 rng(seed);
    size_t start = bytes.size();
    bytes.resize(kBinarySize);
    for (size_t i = start; i + 8 <= bytes.size(); i += 8) {
      uint64_t r = rng();
      memcpy(&bytes[i], &r, 8);
    }
    std::string path = dir + "/bin/hello-20MiB-" + std::to_string(index);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      Fatal("cannot write %s", path.c_str());
    }
    close(fd);
    return path;
  }

  // One run of a binary, through cdeploy (bridge non-empty) or locally.
  struct Run {
    int64_t start = 0, first_line = 0, end = 0;
    // Per cache, the upload of this binary: its temp file created, first and
    // last write, fchmod (after the last byte was hashed), close (after
    // fsync), rename to its hash (stored).
    int64_t created[kDirs] = {}, first_write[kDirs] = {}, last_write[kDirs] = {}, attrib[kDirs] = {},
            closed[kDirs] = {}, stored[kDirs] = {};
    int uploads = 0;      // node uploads of it during the run (a second copy written)
    int adopts = 0;       // nodes that linked in the master's copy (Node.Adopt: no second copy)
    int first_node = -1;  // the first node to receive it
    std::optional<int> status;
  };

  void DrainInotify(const std::string& sha, Run& run) {
    alignas(inotify_event) char buf[8192];
    ssize_t n;
    while ((n = read(inotify, buf, sizeof(buf))) > 0) {
      int64_t now = NowNs();
      for (char* p = buf; p < buf + n;) {
        auto* event = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + event->len;
        std::string name = event->len > 0 ? event->name : "";
        int which = -1;
        for (int i = 0; i < kDirs; ++i) {
          if (wd[i] == event->wd) which = i;
        }
        if (which < 0 || sha.empty() || name.find(sha) == std::string::npos) continue;
        bool temp = name.rfind(".upload-", 0) == 0;
        bool adopt = name.rfind(".adopt-", 0) == 0;  // a hard link to the master's copy, renamed to <sha>
        if ((event->mask & IN_CREATE) && (temp || adopt)) {
          if (run.created[which] == 0) run.created[which] = now;
          if (which > 0) {
            ++(adopt ? run.adopts : run.uploads);
            if (run.first_node < 0) run.first_node = which;
          }
        } else if ((event->mask & IN_MODIFY) && temp && run.stored[which] == 0) {
          if (run.first_write[which] == 0) run.first_write[which] = now;
          run.last_write[which] = now;
        } else if ((event->mask & IN_ATTRIB) && temp && run.attrib[which] == 0) {
          run.attrib[which] = now;
        } else if ((event->mask & IN_CLOSE_WRITE) && temp && run.closed[which] == 0) {
          run.closed[which] = now;
        } else if ((event->mask & IN_MOVED_TO) && name == sha && run.stored[which] == 0) {
          run.stored[which] = now;
        }
      }
    }
  }

  Run RunOnce(const std::string& binary, const std::string& sha, bool deploy) {
    Run run;
    if (inotify >= 0) DrainInotify("", run);  // leftovers of earlier runs
    std::vector<std::string> argv =
        deploy ? std::vector<std::string>{cdeploy_bin, bridge, binary, "--format=json", "--tls=" + Bundle("client")}
               : std::vector<std::string>{binary};
    // cdeploy's hash cache (cli/hash_cache.h) in the bench's directory, not the user's.
    std::vector<std::string> env = {"CONSTELLATION_FORMAT=json", "XDG_CACHE_HOME=" + dir + "/client-cache"};
    run.start = NowNs();
    // stdin stays open (as a user's terminal would) until the program is over.
    Proc p = Start(argv, env, true, deploy ? dir + "/cdeploy.log" : dir + "/local.log", SIGKILL);
    Lines lines(p.out);
    std::string last_exit;
    int64_t deadline = run.start + 60'000'000'000;
    std::string line;
    while (!lines.eof() && NowNs() < deadline) {
      pollfd fds[2] = {{p.out, POLLIN, 0}, {inotify, POLLIN, 0}};
      int r = poll(fds, inotify >= 0 ? 2 : 1, static_cast<int>((deadline - NowNs()) / 1000000 + 1));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      if (inotify >= 0 && (fds[1].revents & POLLIN)) DrainInotify(sha, run);
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        lines.Fill();
        int64_t now = NowNs();
        while (lines.TakeLine(&line)) {
          if (run.first_line == 0 && OutputData(line)) run.first_line = now;
          if (Field(line, "event") == "exit") last_exit = line;
        }
        if (lines.eof()) run.end = now;
      }
    }
    if (inotify >= 0) DrainInotify(sha, run);
    run.status = Finish(p, run.end != 0 ? 5000 : 0);
    if (run.first_line == 0 || !run.status || !WIFEXITED(*run.status) || WEXITSTATUS(*run.status) != 0) {
      Fatal("%s of %s failed (%s; exit status %d; last exit event %s; see %s)", deploy ? "deploy" : "local run",
            binary.c_str(), run.first_line == 0 ? "no output" : "bad exit",
            run.status && WIFEXITED(*run.status) ? WEXITSTATUS(*run.status) : -1, last_exit.c_str(),
            deploy ? "cdeploy.log below" : "local.log below");
    }
    return run;
  }

  void BenchDeploy(int runs) {
    std::vector<double> first, first_exit, second, second_exit, third, local, local_exit, hash_ms;
    std::vector<double> to_bridge, bridge_upload, between, node_upload, after_node;
    std::vector<double> bridge_first_byte, bridge_receive, bridge_fsync, node_first_byte, node_receive, node_fsync;
    int cached_uploads = 0, first_node_uploads_before_line = 0, first_uploads = 0, first_adopts = 0;
    std::string last;
    for (int i = 0; i < runs; ++i) {
      std::string binary = MakeBinary(i);
      int64_t h0 = NowNs();
      absl::StatusOr<std::string> sha = constellation::daemon::Sha256OfFile(binary);
      hash_ms.push_back(Ms(NowNs() - h0));
      if (!sha.ok()) Fatal("hash %s: %s", binary.c_str(), std::string(sha.status().message()).c_str());

      Run a = RunOnce(binary, *sha, true);
      first.push_back(Ms(a.first_line - a.start));
      first_exit.push_back(Ms(a.end - a.start));
      first_uploads += a.uploads;
      first_adopts += a.adopts;
      if (a.created[0] && a.stored[0] && a.first_node > 0 && a.created[a.first_node] && a.stored[a.first_node] &&
          a.stored[a.first_node] < a.first_line) {
        ++first_node_uploads_before_line;
        to_bridge.push_back(Ms(a.created[0] - a.start));
        bridge_upload.push_back(Ms(a.stored[0] - a.created[0]));
        between.push_back(Ms(a.created[a.first_node] - a.stored[0]));
        node_upload.push_back(Ms(a.stored[a.first_node] - a.created[a.first_node]));
        after_node.push_back(Ms(a.first_line - a.stored[a.first_node]));
        int n = a.first_node;
        if (a.first_write[0] && a.attrib[0] && a.closed[0] && a.first_write[n] && a.attrib[n] && a.closed[n]) {
          bridge_first_byte.push_back(Ms(a.first_write[0] - a.created[0]));
          bridge_receive.push_back(Ms(a.last_write[0] - a.first_write[0]));
          bridge_fsync.push_back(Ms(a.closed[0] - a.attrib[0]));
          node_first_byte.push_back(Ms(a.first_write[n] - a.created[n]));
          node_receive.push_back(Ms(a.last_write[n] - a.first_write[n]));
          node_fsync.push_back(Ms(a.closed[n] - a.attrib[n]));
        }
      }
      Run b = RunOnce(binary, *sha, true);
      second.push_back(Ms(b.first_line - b.start));
      second_exit.push_back(Ms(b.end - b.start));
      cached_uploads += b.uploads + (b.created[0] ? 1 : 0);
      // The second deploy hashed the file again: it was written within
      // HashCache::kRacyMargin of the first. It was not of the second.
      Run c = RunOnce(binary, *sha, true);
      third.push_back(Ms(c.first_line - c.start));
      cached_uploads += c.uploads + (c.created[0] ? 1 : 0);
      last = binary;
    }
    for (int i = 0; i < runs; ++i) {
      Run c = RunOnce(last, "", false);
      local.push_back(Ms(c.first_line - c.start));
      local_exit.push_back(Ms(c.end - c.start));
    }
    // cdeploy's own start-up: exec, dynamic linking of gRPC and exit.
    std::vector<double> cdeploy_help;
    for (int i = 0; i < runs; ++i) {
      int64_t t = NowNs();
      Proc p = Start({cdeploy_bin, "--help"}, {}, false, dir + "/cdeploy.log", SIGKILL);
      Finish(p, 10000);
      cdeploy_help.push_back(Ms(NowNs() - t));
    }

    printf(
        "\ndeploy of a 20 MiB binary (examples/hello + random bytes): cdeploy start -> first output line at its "
        "stdout\n");
    PrintMedMinMax("first deploy (new SHA-256)", first);
    PrintMedMinMax("second deploy (same binary, cached)", second);
    PrintMedMinMax("third deploy (cdeploy remembers the hash)", third);
    PrintMedMinMax("local run of the same file (no cluster)", local);
    printf("  until cdeploy / the program exits: first %.2f ms, second %.2f ms, local %.2f ms (medians)\n",
           Median(first_exit), Median(second_exit), Median(local_exit));
    printf("  uploads during the second and third deploys: %d (0 means every one was served from the caches)\n",
           cached_uploads);
    printf(
        "  during the first deploys: %d node uploads (a second copy written), %d adopted (the master's copy linked)\n",
        first_uploads, first_adopts);
    if (!to_bridge.empty()) {
      printf("  where the first deploy's time goes (medians of %zu runs; phases from inotify on the caches):\n",
             to_bridge.size());
      printf("    cdeploy start -> bridge begins receiving   %8.2f ms  (exec + SHA-256 + connect + start message)\n",
             Median(to_bridge));
      printf(
          "      of which SHA-256 of 20 MiB (in this process, page cache warm): %.2f ms;"
          " cdeploy --help exec+exit: %.2f ms\n",
          Median(hash_ms), Median(cdeploy_help));
      printf(
          "    upload to the bridge                       %8.2f ms  (1 MiB gRPC chunks, hash, write, fsync, rename)\n",
          Median(bridge_upload));
      if (!bridge_fsync.empty()) {
        printf(
            "      of which: need_binary -> first chunk written %.2f ms; first -> last chunk written %.2f ms "
            "(%.0f MB/s); fsync %.2f ms\n",
            Median(bridge_first_byte), Median(bridge_receive), kBinarySize / 1e3 / Median(bridge_receive),
            Median(bridge_fsync));
      }
      printf(
          "    bridge stored -> node begins receiving     %8.2f ms  (HasBinary RPC, open; < 0: streamed meanwhile)\n",
          Median(between));
      printf(
          "    to the node                                %8.2f ms  (upload: chunks, hash, write, fsync, rename; "
          "adopt: hash, link, rename)\n",
          Median(node_upload));
      if (!node_fsync.empty()) {
        printf(
            "      of which: open -> first chunk written %.2f ms; first -> last chunk written %.2f ms "
            "(%.0f MB/s); fsync %.2f ms\n",
            Median(node_first_byte), Median(node_receive), kBinarySize / 1e3 / Median(node_receive),
            Median(node_fsync));
      }
      printf("    node stored -> first line at cdeploy       %8.2f ms  (Launch RPC, monitor + exec, output path)\n",
             Median(after_node));
      printf("    (the second deploy is start-up + hash + connect + the last phase: %.2f ms median)\n", Median(second));
    }
    fflush(stdout);
  }

  struct SpawnStats {
    std::vector<double> returned, first_line, exited, t0_line, stdin_ms;
    double first_spawn_first_line = -1, first_spawn_exit = -1;
  };

  // Runs spawn_latency --root (through cdeploy, or locally under its own
  // bridge) and paces it through its stdin: one "go" per spawn, the next once
  // the child's exit is reported.
  SpawnStats MeasureSpawn(bool fabric, int spawns, int warmup) {
    std::vector<std::string> argv =
        // cdeploy forwards only PATH, LANG, TZ, LC_* and CONSTELLATION_* unless told (docs/cluster.md).
        fabric ? std::vector<std::string>{cdeploy_bin,
                                          bridge,
                                          spawn_bin,
                                          "--format=json",
                                          "--env=SPAWN_LATENCY_T1",
                                          "--tls=" + Bundle("client"),
                                          "--",
                                          "--root"}
               : std::vector<std::string>{spawn_bin, "--root"};
    std::string log = dir + (fabric ? "/cdeploy-spawn.log" : "/local-spawn.log");
    Proc p = Start(argv, {"SPAWN_LATENCY_T1=1", "CONSTELLATION_FORMAT=json", "XDG_CACHE_HOME=" + dir + "/client-cache"},
                   true, log, SIGKILL);
    Lines lines(p.out);
    SpawnStats stats;
    std::string line;
    std::map<std::string, std::string> partial;  // per pid: output after its last newline
    bool failed = false;
    for (int i = 0; i < spawns + warmup && !failed; ++i) {
      int64_t go = NowNs();
      if (write(p.in, "go\n", 3) != 3) {
        failed = true;
        break;
      }
      std::string child;
      int64_t t0 = 0, t1 = 0, t0_seen = 0, line_at = 0, exit_at = 0;
      int64_t deadline = go + 15'000'000'000;
      while (t0 == 0 || t1 == 0 || line_at == 0 || exit_at == 0) {
        int r = lines.Next(&line, deadline);
        if (r <= 0) {
          fprintf(stderr, "cluster_bench: spawn %d: %s\n", i,
                  r == 0 ? "the root's output ended early" : "no answer in 15 s");
          failed = true;
          break;
        }
        int64_t now = NowNs();
        std::string event = Field(line, "event"), pid = Field(line, "pid");
        if (std::optional<std::string> data = OutputData(line)) {
          // An output event is a chunk, not a line: "t0 ..." and "t1 ..." often come together.
          std::string& text = partial[pid];
          text += *data;
          size_t nl;
          while ((nl = text.find('\n')) != std::string::npos) {
            std::string l = text.substr(0, nl);
            text.erase(0, nl + 1);
            if (l.rfind("t0 ", 0) == 0) {
              size_t space = l.find(' ', 3);
              child = l.substr(3, space - 3);
              absl::SimpleAtoi(l.substr(space + 1), &t0);
              t0_seen = now;
            } else if (l.rfind("t1 ", 0) == 0) {
              absl::SimpleAtoi(l.substr(3), &t1);
            } else if (l.rfind("child ", 0) == 0 && line_at == 0) {
              line_at = now;
              if (child.empty()) child = pid;
            }
          }
        } else if (event == "exit" && !pid.empty() && (pid == child || (child.empty() && line_at != 0))) {
          exit_at = now;
        }
      }
      if (failed) break;
      if (i == 0) {
        stats.first_spawn_first_line = Ms(line_at - t0);
        stats.first_spawn_exit = Ms(exit_at - t0);
      }
      if (i < warmup) continue;
      stats.returned.push_back(Ms(t1 - t0));
      stats.first_line.push_back(Ms(line_at - t0));
      stats.exited.push_back(Ms(exit_at - t0));
      stats.t0_line.push_back(Ms(t0_seen - t1));
      stats.stdin_ms.push_back(Ms(t0 - go));
    }
    close(p.in);  // the root's stdin ends: it returns, and the deployment with it
    p.in = -1;
    int64_t deadline = NowNs() + 10'000'000'000;
    while (lines.Next(&line, deadline) > 0) {
    }
    std::optional<int> status = Finish(p, 5000);
    if (failed)
      Fatal("the %s spawn benchmark failed (see %s below)", fabric ? "fabric" : "local",
            log.substr(log.rfind('/') + 1).c_str());
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      fprintf(stderr, "cluster_bench: spawn_latency --root (%s) did not exit cleanly\n", fabric ? "fabric" : "local");
    }
    return stats;
  }

  void BenchSpawn(int spawns) {
    const int warmup = 3;
    SpawnStats fabric = MeasureSpawn(true, spawns, warmup);
    // Which nodes hold spawn_latency now: the root's, and the children's.
    absl::StatusOr<std::string> sha = constellation::daemon::Sha256OfFile(spawn_bin);
    int holders = 0;
    for (int i = 1; i <= 3; ++i) {
      struct stat st;
      holders += sha.ok() && stat((dir + "/node" + std::to_string(i) + "/node/" + *sha).c_str(), &st) == 0;
    }
    SpawnStats local = MeasureSpawn(false, spawns, warmup);
    for (auto [name, stats] :
         {std::pair{"on the fabric (cdeploy)", &fabric}, std::pair{"local (no cluster)", &local}}) {
      printf("\nspawn latency %s: spawn() in the root of spawn_latency --root, %d spawns after %d warm-up\n", name,
             spawns, warmup);
      if (stats == &fabric) {
        printf("  spawn_latency is on %d of the 3 nodes (the root's node, and the one its children are placed on)\n",
               holders);
        printf("  first spawn (uploads spawn_latency to the child's node): first line %.2f ms, exit %.2f ms\n",
               stats->first_spawn_first_line, stats->first_spawn_exit);
      }
      PrintP50P99("spawn() returns in the root", stats->returned);
      PrintP50P99("child's first line at cdeploy/bridge", stats->first_line);
      PrintP50P99("child's exit reported there", stats->exited);
      PrintP50P99("root's t0 line: spawn() return -> there", stats->t0_line);
      PrintP50P99("stdin \"go\" -> spawn() called", stats->stdin_ms);
    }
    fflush(stdout);
  }

  // A unary gRPC round trip to a node daemon (HasBinary of an unknown hash),
  // over mutual TLS as the master makes it.
  void BenchGrpc(int calls) {
    absl::StatusOr<constellation::daemon::security::Credentials> master =
        constellation::daemon::security::Credentials::LoadBundle(Bundle("master"));
    if (!master.ok()) Fatal("%s", std::string(master.status().message()).c_str());
    auto stub = constellation::pb::Node::NewStub(grpc::CreateChannel(node_addrs[1], master->ChannelCredentials()));
    constellation::pb::BinaryId id;
    id.set_sha256(std::string(64, '0'));
    id.set_size(1);
    std::vector<double> rtt;
    for (int i = 0; i < calls + 20; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      constellation::pb::HasBinaryReply reply;
      int64_t t = NowNs();
      grpc::Status status = stub->HasBinary(&context, id, &reply);
      if (!status.ok()) Fatal("HasBinary: %s", status.error_message().c_str());
      if (i >= 20) rtt.push_back(Ms(NowNs() - t));
    }
    // What a child's start costs without Constellation: spawn_latency
    // --bare prints one line and exits.
    std::vector<double> bare_line, bare_exit;
    // posix_spawn (vfork-like): this process's own size does not count.
    for (int i = 0; i < calls; ++i) {
      int out[2];
      if (pipe2(out, O_CLOEXEC) != 0) Fatal("pipe: %s", strerror(errno));
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
      char* args[] = {const_cast<char*>(spawn_bin.c_str()), const_cast<char*>("--bare"), nullptr};
      int64_t t = NowNs();
      pid_t pid = 0;
      int rc = posix_spawn(&pid, spawn_bin.c_str(), &actions, nullptr, args, environ);
      posix_spawn_file_actions_destroy(&actions);
      close(out[1]);
      if (rc != 0) Fatal("posix_spawn %s: %s", spawn_bin.c_str(), strerror(rc));
      Track(pid);
      Lines lines(out[0]);
      std::string line;
      bool ok = lines.Next(&line, t + 10'000'000'000) == 1;
      bare_line.push_back(Ms(NowNs() - t));
      while (lines.Next(&line, t + 10'000'000'000) > 0) {
      }
      close(out[0]);
      Proc p;
      p.pid = pid;
      p.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      bool exited = Finish(p, 5000).has_value();
      bare_exit.push_back(Ms(NowNs() - t));
      if (!ok || !exited) Fatal("spawn_latency --bare did not print a line and exit");
    }
    printf("\nreferences\n");
    PrintP50P99("gRPC unary RTT to a node (HasBinary)", rtt);
    PrintP50P99("posix_spawn spawn_latency --bare: line", bare_line);
    PrintP50P99("posix_spawn spawn_latency --bare: exit", bare_exit);
    fflush(stdout);
  }
};

// The runfile or a clear exit: without them there is nothing to measure.
std::string Runfile(const char* argv0, const std::string& rel) {
  std::string path = bench::Runfile(argv0, rel);
  if (!path.empty()) return path;
  fprintf(stderr, "cluster_bench: cannot find %s in the runfiles (run it with bazel run)\n", rel.c_str());
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, spawns = 200;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--quick") == 0) {
      runs = 3;
      spawns = 50;
    } else if (strncmp(argv[i], "--runs=", 7) == 0) {
      runs = std::max(1, atoi(argv[i] + 7));
    } else if (strncmp(argv[i], "--spawns=", 9) == 0) {
      spawns = std::max(1, atoi(argv[i] + 9));
    } else {
      fprintf(stderr, "usage: cluster_bench [--quick] [--runs=N] [--spawns=N]\n");
      return 2;
    }
  }
  Bench bench;
  bench.daemon_bin = Runfile(argv[0], "daemon/constellation");
  bench.cdeploy_bin = Runfile(argv[0], "cli/cdeploy");
  bench.hello_bin = Runfile(argv[0], "examples/hello");
  bench.spawn_bin = Runfile(argv[0], "bench/spawn_latency");

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaction(s, &sa, nullptr);
  alarm(runs * 60 + spawns + 300);  // the watchdog: far above a normal run
  unsetenv("CONSTELLATION");
  unsetenv("CONSTELLATION_FORMAT");

  const char* tmp = getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/cluster_bench.XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(g_tmpdir, sizeof(g_tmpdir), "%s", templ.c_str());
  bench.dir = templ;
  mkdir((bench.dir + "/bin").c_str(), 0755);

  int64_t t = NowNs();
  bench.StartCluster();
  printf("loopback cluster: nodes %s, %s, %s; bridge %s (up in %.0f ms; temp dir %s)\n", bench.node_addrs[0].c_str(),
         bench.node_addrs[1].c_str(), bench.node_addrs[2].c_str(), bench.bridge.c_str(), Ms(NowNs() - t),
         bench.dir.c_str());
  fflush(stdout);

  bench.BenchDeploy(runs);
  bench.BenchSpawn(spawns);
  bench.BenchGrpc(spawns);
  bench.Teardown();
  return 0;
}
