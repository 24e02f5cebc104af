#pragma once

// A FIFO whose elements never move: a slot keeps its address from push to
// pop, so a writer may use pointers into queued elements while other elements
// are pushed (under the owner's lock). Slots are allocated one by one and
// reused: what an element owns (a recycled buffer) stays with its slot.
//
// It grows with traffic and shrinks when idle: it starts with `initial`
// slots, doubles when a push finds it full, up to `max` (push_back beyond
// `max` is a bug), and ShrinkIfEmpty gives back the slots beyond `initial`
// (with what they own). Growth allocates, so it happens once per doubling,
// never per element in the steady state. Thread-compatible.

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace constellation::net {

template <class T>
class Ring {
 public:
  Ring(size_t initial, size_t max) : initial_(std::max<size_t>(1, std::min(initial, max))), max_(max) {
    for (size_t i = 0; i < initial_; ++i) slots_.push_back(std::make_unique<T>());
  }

  size_t size() const { return size_; }
  // Slots allocated now, and the most there may be.
  size_t capacity() const { return slots_.size(); }
  size_t max_capacity() const { return max_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == max_; }

  // The i-th element from the front.
  T& at(size_t i) {
    size_t k = head_ + i;  // < 2 * size: no division on the hot path
    if (k >= slots_.size()) k -= slots_.size();
    return *slots_[k];
  }
  T& front() { return at(0); }

  // The slot for a new back element, already counted in size(). Must not be full.
  T& push_back() {
    if (full()) {
      std::fprintf(stderr, "constellation: Ring::push_back on a full ring\n");
      std::abort();
    }
    if (size_ == slots_.size()) Grow();
    T& slot = at(size_);
    ++size_;
    return slot;
  }
  void pop_front() {
    if (++head_ == slots_.size()) head_ = 0;
    --size_;
  }

  // When empty, frees the slots beyond the initial ones. True if it shrank.
  bool ShrinkIfEmpty() {
    if (size_ != 0 || slots_.size() <= initial_) return false;
    slots_.resize(initial_);
    slots_.shrink_to_fit();
    head_ = 0;
    return true;
  }

 private:
  // Full: doubles the slots (at most to max_). The elements keep their
  // addresses; only the pointers to them move, into queue order.
  void Grow() {
    const size_t grown = std::min(2 * slots_.size(), max_);
    std::vector<std::unique_ptr<T>> slots;
    slots.reserve(grown);
    for (size_t i = 0; i < size_; ++i) slots.push_back(std::move(slots_[(head_ + i) % slots_.size()]));
    while (slots.size() < grown) slots.push_back(std::make_unique<T>());
    slots_.swap(slots);
    head_ = 0;
  }

  const size_t initial_;
  const size_t max_;
  std::vector<std::unique_ptr<T>> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace constellation::net
