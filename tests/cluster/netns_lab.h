#pragma once

// Network namespaces for the cluster tests (needs root and `ip netns`).
// NetnsLab creates namespaces joined by veth pairs to a bridge device in a
// namespace of its own, with one more veth to the root namespace so that the
// test (and cdeploy) reach the cluster from outside; everything it creates is
// named uniquely per run and deleted in its destructor. Daemons run inside
// with `ip netns exec` (NodeSpec::netns in cluster_fixture.h).

#include <string>
#include <vector>

namespace constellation::testing {

// Network namespaces for one test run. Creates `count` host namespaces with
// addresses <subnet>.1 ... <subnet>.count/24, a switch namespace holding a
// bridge device that joins them, and a veth from the root namespace into the
// switch with <subnet>.254 so the root namespace reaches them. Check ok().
class NetnsLab {
 public:
  explicit NetnsLab(int count);
  ~NetnsLab();  // deletes every namespace and link it created
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& ns(int i) const { return namespaces_[i]; }  // i in [0, count)
  std::string ip(int i) const;                                   // of ns(i)
  std::string root_ip() const;                                   // the root namespace's end
  std::string subnet() const { return subnet_; }                 // "10.77.N"
  // A partition: host i's link to the switch goes down (nothing reaches it
  // or leaves it, its processes keep running), or up again. False on error.
  bool Cut(int i);
  bool Heal(int i);
  // Every namespace and link this lab created that still exists (for the cleanup check).
  std::vector<std::string> Leftovers() const;

 private:
  bool Run(const std::vector<std::string>& argv);
  std::string tag_;
  std::string subnet_;
  std::vector<std::string> namespaces_;
  std::string switch_ns_;
  std::string root_link_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace constellation::testing
