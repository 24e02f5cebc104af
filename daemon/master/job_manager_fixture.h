#pragma once

// The JobManager tests' fixture: one master's parts (as daemon/master/master.cc
// composes them) over fake nodes "n1:1" (2 GiB, 2 cpu) and "n2:1" (1 GiB,
// 1 cpu), a real store in a temporary directory and a fake clock.

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "daemon/master/fake_node_client.h"
#include "daemon/master/gone_broadcast.h"
#include "daemon/master/job_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::ToProto;

inline const Identity kAnn{security::Role::kClient, "ann"};
inline const Identity kBob{security::Role::kClient, "bob"};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/job_manager_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    base_ = dir;
    absl::StatusOr<std::unique_ptr<BinaryCache>> cache = BinaryCache::Create(base_ + "/cache", 1 << 20);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    std::string file = base_ + "/program";
    const std::string contents = "#!/bin/sh\necho hi\n";
    std::ofstream(file) << contents;
    binary_.set_sha256(*Sha256OfFile(file));
    binary_.set_size(contents.size());
    ASSERT_TRUE(cache_->AddFile(binary_, file).ok());
    StartMaster();
  }
  void TearDown() override {
    StopMaster();
    std::filesystem::remove_all(base_);
  }

  // A master's parts, as daemon/master/master.cc composes them.
  // `absent`: a node whose attach fails (it does not come back); "*": every node.
  void StartMaster(pb::NodeHello hello1 = {}, pb::NodeHello hello2 = {}, const std::string& absent = "") {
    JobStore::Options store_options;
    store_options.commit_interval = absl::Milliseconds(1);
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(base_ + "/state", store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto n1 = std::make_unique<FakeNodeClient>("n1:1", 0x0a000001);
    auto n2 = std::make_unique<FakeNodeClient>("n2:1", 0x0a000002);
    n1->SetHello(hello1);
    n2->SetHello(hello2);
    for (FakeNodeClient* node : {n1.get(), n2.get()}) {
      if (node->addr() == absent || absent == "*") node->attach_error = absl::UnavailableError("connection refused");
    }
    n1_ = n1.get();
    n2_ = n2.get();
    std::vector<NodeSpec> specs;
    specs.push_back({std::move(n1), Resources{2ull << 30, 2}});
    specs.push_back({std::move(n2), Resources{1ull << 30, 1}});
    NodeSet::Options node_options;
    node_options.retry = absl::Milliseconds(1);
    // Nodes that join are fakes too: at 10.0.0.(16 + n), with the hello the test set for their address.
    node_options.make_client = [this](const std::string& addr) {
      std::lock_guard<std::mutex> lock(joined_mu_);
      auto node = std::make_unique<FakeNodeClient>(addr, 0x0a000010 + static_cast<uint32_t>(joined_.size()));
      node->SetHello(joined_hellos_[addr]);
      joined_[addr] = node.get();
      return node;
    };
    nodes_ = std::make_unique<NodeSet>(std::move(specs), std::move(node_options));
    placement_ = std::make_unique<Placement>(&metrics_);
    binaries_ = std::make_unique<BinaryDistribution>(cache_.get());
    timers_ = std::make_unique<FakeTimers>();
    NodeSet* node_set = nodes_.get();
    gone_ = std::make_unique<GoneBroadcast>([node_set](const std::string& addr) { return node_set->client(addr); },
                                            timers_.get());
    notifier_ = std::make_unique<CommitNotifier>(nodes_.get());
    CommitNotifier* notifier = notifier_.get();
    store_->SetCommitListener([notifier](const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks) {
      notifier->OnCommit(jobs, marks);
    });
    JobManager::Options options;
    options.self_addr = "master:1";
    options.master_grace = absl::Seconds(60);
    jobs_ =
        std::make_unique<JobManager>(JobManager::Parts{store_.get(), nodes_.get(), placement_.get(), binaries_.get(),
                                                       cache_.get(), timers_.get(), notifier, gone_.get(), &metrics_},
                                     options);
    jobs_->Recover();
    nodes_->Start(jobs_.get());
  }
  void StopMaster() {
    if (!jobs_) return;
    jobs_->Shutdown();
    gone_->Shutdown();
    nodes_->Stop();
    store_->Flush().IgnoreError();
    store_->SetCommitListener(nullptr);
    notifier_.reset();
    jobs_.reset();
    gone_.reset();
    timers_.reset();
    store_.reset();
    nodes_.reset();
    std::lock_guard<std::mutex> lock(joined_mu_);
    joined_.clear();  // owned by the nodes that are gone
  }
  void WaitUp() { ASSERT_EQ(nodes_->WaitUp(absl::Seconds(10)), 2u); }
  // The fake made for a node that joined at `addr` (the latest master's); null if none.
  FakeNodeClient* Joined(const std::string& addr) {
    std::lock_guard<std::mutex> lock(joined_mu_);
    auto it = joined_.find(addr);
    return it == joined_.end() ? nullptr : it->second;
  }

  v1::JobSpec Spec(Resources resources = Resources{256 << 20, 1}) {
    v1::JobSpec spec;
    *spec.mutable_binary() = v1::BinaryRef();
    spec.mutable_binary()->set_sha256(binary_.sha256());
    spec.mutable_binary()->set_size(binary_.size());
    spec.add_argv("program");
    *spec.mutable_resources() = ToProto(resources);
    return spec;
  }

  // Submits and waits until the root runs; returns the job and the root's node.
  std::pair<v1::Job, FakeNodeClient*> SubmitRunning(const v1::JobSpec& spec) {
    absl::StatusOr<v1::Job> job = jobs_->Submit(spec, kAnn);
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return {};
    EXPECT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
    absl::StatusOr<v1::Job> running = jobs_->Get(job->id(), kAnn);
    EXPECT_TRUE(running.ok() && running->processes_size() == 1);
    if (!running.ok() || running->processes_size() != 1) return {};
    return {*running, running->processes(0).node() == "n1:1" ? n1_ : n2_};
  }

  // A running job whose root fills most of n1 (1.5 GiB, 1.5 cpu), so that a
  // child of more than 512 MiB can only go to n2. Its id (0 on failure) and
  // its root's pid.
  std::pair<uint64_t, pb::Pid> RootOnN1() {
    auto [job, node] = SubmitRunning(Spec(Resources{1536ull << 20, 1.5}));
    EXPECT_EQ(node, n1_);
    if (node != n1_) return {0, {}};
    return {std::stoull(job.id()), job.processes(0).pid()};
  }
  static pb::SpawnRequest SpawnOf(const pb::Pid& parent, Resources resources) {
    pb::SpawnRequest request;
    *request.mutable_parent() = parent;
    *request.mutable_resources() = ToProto(resources);
    return request;
  }

  bool WaitState(const std::string& id, v1::JobState state) {
    return n1_->WaitFor([&] {
      absl::StatusOr<v1::Job> job = jobs_->Get(id, kAnn);
      return job.ok() && job->state() == state;
    });
  }

  // The job's log, as one line per event.
  std::vector<std::string> Log(const std::string& id) {
    store_->Flush().IgnoreError();
    std::vector<std::string> lines;
    for (const v1::JobEvent& event : store_->ReadEvents(std::stoull(id), 0, 1000, 1 << 30)) {
      if (event.has_state()) {
        lines.push_back(absl::StrCat("state ", v1::JobState_Name(event.state().state())));
      } else if (event.has_truncated()) {
        lines.push_back("truncated");
      } else {
        const pb::ProcessEvent& p = event.process();
        std::string who = absl::StrCat(p.pid().port());
        if (p.has_spawn()) lines.push_back(absl::StrCat(who, " spawn ", p.spawn().child().port()));
        if (p.has_output()) lines.push_back(absl::StrCat(who, " out ", p.output().data()));
        if (p.has_exit()) lines.push_back(absl::StrCat(who, " exit ", ExitCodeOfForTest(p.exit())));
      }
    }
    return lines;
  }
  static int ExitCodeOfForTest(const pb::ExitEvent& exit) {
    return exit.status_case() == pb::ExitEvent::kSignal ? 128 + exit.signal() : exit.code();
  }

  static pb::NodeEvent Output(uint64_t job, const pb::Pid& pid, uint64_t seq, const std::string& data) {
    pb::NodeEvent event;
    event.set_deployment(job);
    event.set_seq(seq);
    *event.mutable_event()->mutable_pid() = pid;
    event.mutable_event()->mutable_output()->set_fd(1);
    event.mutable_event()->mutable_output()->set_data(data);
    return event;
  }
  static pb::NodeEvent Exit(uint64_t job, const pb::Pid& pid, uint64_t seq, int code) {
    pb::NodeEvent event;
    event.set_deployment(job);
    event.set_seq(seq);
    *event.mutable_event()->mutable_pid() = pid;
    event.mutable_event()->mutable_exit()->set_code(code);
    return event;
  }

  // The value of the sample `series` (name and labels as rendered) in a scrape now; -1 if absent.
  double Metric(const std::string& series) const {
    std::string text = registry_.Render();
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    at += series.size() + 2;
    return std::stod(text.substr(at, text.find('\n', at) - at));
  }

  metrics::Registry registry_;
  metrics::MasterMetrics metrics_{registry_};  // kept across StartMaster/StopMaster, as a process's registry is
  std::string base_;
  pb::BinaryId binary_;
  std::unique_ptr<BinaryCache> cache_;
  std::unique_ptr<JobStore> store_;
  FakeNodeClient* n1_ = nullptr;
  FakeNodeClient* n2_ = nullptr;
  std::unique_ptr<NodeSet> nodes_;
  std::mutex joined_mu_;
  std::map<std::string, FakeNodeClient*> joined_;       // guarded by joined_mu_; owned by nodes_
  std::map<std::string, pb::NodeHello> joined_hellos_;  // guarded by joined_mu_
  std::unique_ptr<Placement> placement_;
  std::unique_ptr<BinaryDistribution> binaries_;
  std::unique_ptr<FakeTimers> timers_;
  std::unique_ptr<GoneBroadcast> gone_;
  std::unique_ptr<CommitNotifier> notifier_;
  std::unique_ptr<JobManager> jobs_;
};

}  // namespace constellation::daemon::master
