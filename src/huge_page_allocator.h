/// @file huge_page_allocator.h
/// @brief std::allocator replacement for large lattice arrays: 2 MiB-aligned and marked for
/// transparent huge pages (madvise) before first touch, so the strided high-bit passes of the
/// transforms do not miss the TLB on every row. Small arrays use plain aligned allocation.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace harsanyi {

template <class T> struct HugePageAllocator {
  using value_type = T;
  static constexpr std::size_t kHuge = std::size_t{2} << 20;
  static constexpr std::size_t kAlign = 64;

  HugePageAllocator() = default;
  template <class U> HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    const std::size_t align = bytes >= kHuge ? kHuge : kAlign;
    const std::size_t rounded = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded);
    if (!p) throw std::bad_alloc();
    if (bytes >= kHuge) madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure is harmless
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U> bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
  template <class U> bool operator!=(const HugePageAllocator<U>&) const noexcept { return false; }
};

/// A vector for lattice arrays (2^n elements per sample).
template <class T> using LatticeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace harsanyi
