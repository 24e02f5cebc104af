#pragma once

// A fixed-capacity FIFO whose elements never move: a slot keeps its address
// from push to pop, so a writer may use pointers into queued elements while
// other elements are pushed (under the owner's lock). Thread-compatible.

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace constellation::net {

template <class T>
class Ring {
 public:
  explicit Ring(size_t capacity) : slots_(capacity) {}

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == slots_.size(); }

  // The i-th element from the front.
  T& at(size_t i) { return slots_[(head_ + i) % slots_.size()]; }
  T& front() { return at(0); }

  // The slot for a new back element, already counted in size(). Must not be full.
  T& push_back() {
    if (full()) {
      std::fprintf(stderr, "constellation: Ring::push_back on a full ring\n");
      std::abort();
    }
    T& slot = at(size_);
    ++size_;
    return slot;
  }
  void pop_front() {
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }

 private:
  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace constellation::net
