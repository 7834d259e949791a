// The CUDA kernels' index logic replayed on the CPU: which elements every thread, register and
// block touches in each pass, with the index functions of cuda/lattice_index.h the kernels use.
// Pure C++ (no CUDA needed): built and run in every configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lattice_index.h"
#include "lattice_transforms.h"

namespace ix = harsanyi::cuda::index;

namespace {

// ---------------------------------------------------------------------------------------------
// CPU replay of the kernels' index logic

// Records, per element, the bits of the butterflies that update it, in execution order.
struct Replay {
  int n;
  std::uint64_t total;
  std::vector<std::vector<int>> bits;  // per element
  Replay(int n_, std::uint64_t samples) : n(n_), total(samples << n_), bits(total) {}

  void update(std::uint64_t e, std::uint64_t partner, int b) {
    ASSERT_LT(e, total);
    ASSERT_LT(partner, total) << "partner out of range";
    ASSERT_EQ(partner, e ^ (std::uint64_t{1} << b)) << "element " << e << " bit " << b;
    ASSERT_EQ(partner >> n, e >> n) << "pair crosses rows";
    bits[e].push_back(b);
  }
};

// The tile pass of lattice_kernels.cu: per bit, Lane/Block levels update each (thread, register)
// from the partner thread's same register; the Register level updates both sides of a pair.
void replay_tile_pass(Replay& rep, int nbits, ix::TileShape s) {
  const std::uint64_t tiles = ix::tile_count(rep.total, s);
  const unsigned threads = 1u << s.thread_bits, regs = ix::tile_registers(s);
  for (std::uint64_t tile = 0; tile < tiles; ++tile) {
    std::set<unsigned> slots;
    for (unsigned t = 0; t < threads; ++t)
      for (unsigned r = 0; r < regs; ++r) {
        const unsigned slot = ix::tile_slot(t, r, s);
        EXPECT_LT(slot, 1u << s.tile_bits);
        EXPECT_EQ(ix::tile_element(tile, t, r, s), (tile << s.tile_bits) + slot);
        slots.insert(slot);
      }
    EXPECT_EQ(slots.size(), std::size_t{threads} * regs) << "shared-memory slots collide";
    for (int b = 0; b < nbits; ++b) {
      const ix::BitLevel level = ix::tile_bit_level(b, s);
      for (unsigned t = 0; t < threads; ++t)
        for (unsigned r = 0; r < regs; ++r) {
          const std::uint64_t e = ix::tile_element(tile, t, r, s);
          if (level == ix::BitLevel::Register) {
            const unsigned pr = ix::tile_partner_register(r, b, s);
            ASSERT_LT(pr, regs);
            if (r > pr) continue;  // the pair is done once, by its lower register
            const std::uint64_t pe = ix::tile_element(tile, t, pr, s);
            EXPECT_FALSE(ix::is_upper(e, b));
            EXPECT_TRUE(ix::is_upper(pe, b));
            if (e >= rep.total) {
              EXPECT_GE(pe, rep.total) << "a pair half in range";
              continue;
            }
            rep.update(e, pe, b);
            rep.update(pe, e, b);
          } else {
            const unsigned pt = ix::tile_partner_thread(t, b);
            ASSERT_LT(pt, threads);
            if (level == ix::BitLevel::Lane) {
              EXPECT_EQ(pt >> s.lane_bits, t >> s.lane_bits) << "shuffle partner in another warp";
            }
            const std::uint64_t pe = ix::tile_element(tile, pt, r, s);
            EXPECT_EQ(ix::tile_slot(pt, r, s), ix::tile_slot(t, r, s) ^ (1u << b));
            EXPECT_EQ(ix::is_upper(e, b), ((e >> b) & 1) != 0);
            if (e >= rep.total) {
              EXPECT_GE(pe, rep.total) << "a pair half in range";
              continue;
            }
            rep.update(e, pe, b);
          }
        }
    }
  }
}

// A column pass of lattice_kernels.cu over bits [first, first + count).
void replay_column_pass(Replay& rep, int first, int count) {
  const std::uint64_t columns = ix::column_count(rep.total, count);
  std::vector<int> covered(rep.total, 0);
  for (std::uint64_t c = 0; c < columns; ++c) {
    for (unsigned r = 0; r < (1u << count); ++r) {
      const std::uint64_t e = ix::column_element(c, first, count, r);
      ASSERT_LT(e, rep.total);
      ++covered[e];
    }
    for (int b = 0; b < count; ++b)
      for (unsigned r = 0; r < (1u << count); ++r) {
        if (r & (1u << b)) continue;
        const std::uint64_t e = ix::column_element(c, first, count, r);
        const std::uint64_t pe = ix::column_element(c, first, count, r | (1u << b));
        rep.update(e, pe, first + b);
        rep.update(pe, e, first + b);
      }
  }
  for (std::uint64_t e = 0; e < rep.total; ++e)
    ASSERT_EQ(covered[e], 1) << "column pass covers element " << e << " " << covered[e] << "x";
}

// A wide column pass of lattice_kernels.cu over bits [first, first + count): the register bits,
// then the three warp bits of each (register, lane) cube.
void replay_wide_pass(Replay& rep, int first, int count) {
  ASSERT_GE(first, ix::kWideLaneBits);
  const int reg_bits = count - ix::kWideWarpBits;
  const unsigned regs = 1u << reg_bits, warps = 1u << ix::kWideWarpBits, lanes = 32;
  const std::uint64_t tiles = ix::wide_tile_count(rep.total, count);
  ASSERT_EQ(tiles << (count + ix::kWideLaneBits), rep.total);
  std::vector<int> covered(rep.total, 0);
  for (std::uint64_t t = 0; t < tiles; ++t) {
    for (unsigned w = 0; w < warps; ++w)
      for (unsigned l = 0; l < lanes; ++l)
        for (unsigned j = 0; j < regs; ++j) {
          const std::uint64_t e = ix::wide_element(t, w, l, j, first, count);
          ASSERT_LT(e, rep.total);
          ++covered[e];
          if (l > 0) {  // consecutive lanes: consecutive elements (coalesced)
            ASSERT_EQ(e, ix::wide_element(t, w, l - 1, j, first, count) + 1);
          }
        }
    for (int b = 0; b < reg_bits; ++b)
      for (unsigned w = 0; w < warps; ++w)
        for (unsigned l = 0; l < lanes; ++l)
          for (unsigned j = 0; j < regs; ++j) {
            if (j & (1u << b)) continue;
            const std::uint64_t e = ix::wide_element(t, w, l, j, first, count);
            const std::uint64_t pe = ix::wide_element(t, w, l, j | (1u << b), first, count);
            rep.update(e, pe, first + b);
            rep.update(pe, e, first + b);
          }
    for (int b = 0; b < ix::kWideWarpBits; ++b)
      for (unsigned j = 0; j < regs; ++j)
        for (unsigned l = 0; l < lanes; ++l)
          for (unsigned u = 0; u < warps; ++u) {
            if (u & (1u << b)) continue;
            const std::uint64_t e = ix::wide_element(t, u, l, j, first, count);
            const std::uint64_t pe = ix::wide_element(t, u | (1u << b), l, j, first, count);
            rep.update(e, pe, first + reg_bits + b);
            rep.update(pe, e, first + reg_bits + b);
          }
  }
  for (std::uint64_t e = 0; e < rep.total; ++e)
    ASSERT_EQ(covered[e], 1) << "wide pass covers element " << e << " " << covered[e] << "x";
}

void replay_transform(int n, std::uint64_t samples, ix::TileShape s, int max_group) {
  SCOPED_TRACE("n=" + std::to_string(n) + " samples=" + std::to_string(samples) + " tile=(" +
               std::to_string(s.lane_bits) + "," + std::to_string(s.thread_bits) + "," +
               std::to_string(s.tile_bits) + ") group=" + std::to_string(max_group));
  const ix::PassPlan plan = ix::make_pass_plan(n, s.tile_bits, max_group);
  int covered = plan.low_bits;
  for (int g = 0; g < plan.groups; ++g) {
    EXPECT_EQ(plan.first[g], covered);
    EXPECT_GE(plan.count[g], 1);
    EXPECT_LE(plan.count[g], max_group);
    covered += plan.count[g];
  }
  EXPECT_EQ(covered, n);
  Replay rep(n, samples);
  if (n > 0) replay_tile_pass(rep, plan.low_bits, s);  // the kernels skip n = 0 (identity)
  for (int g = 0; g < plan.groups; ++g) {
    if (ix::is_wide_group(plan.count[g]))
      replay_wide_pass(rep, plan.first[g], plan.count[g]);
    else
      replay_column_pass(rep, plan.first[g], plan.count[g]);
  }
  for (std::uint64_t e = 0; e < rep.total; ++e) {
    ASSERT_EQ(rep.bits[e].size(), static_cast<std::size_t>(n)) << "element " << e;
    for (int b = 0; b < n; ++b) ASSERT_EQ(rep.bits[e][b], b) << "element " << e << " out of order";
  }
}

}  // namespace

TEST(CudaIndex, EveryPairOncePerBitInIncreasingOrder) {
  const ix::TileShape shapes[] = {{1, 2, 3}, {2, 2, 4}, {0, 1, 1}, {1, 3, 3},
                                  {0, 0, 2}, {2, 3, 5}, {1, 1, 1}};
  for (const ix::TileShape& s : shapes)
    for (int n = 0; n <= 10; ++n)
      for (std::uint64_t samples : {1, 2, 3, 5})
        for (int group : {1, 2, 3, 5}) replay_transform(n, samples, s, group);
}

TEST(CudaIndex, KernelShapeReplays) {
  // The shape and group sizes the kernels use, on rows shorter and longer than a tile: register
  // column passes (n = 12..16), wide passes of 6 (n = 17) and 9 bits (n = 20).
  for (int n : {0, 1, 3, 5, 7, 8, 10, 11, 12, 14, 16, 17})
    for (std::uint64_t samples : {1, 3})
      for (unsigned es : {4u, 8u})
        replay_transform(n, samples, ix::kKernelTile, ix::column_max_group(es));
  replay_transform(20, 1, ix::kKernelTile, ix::column_max_group(4));
}

TEST(CudaIndex, KernelPlansCoverAllSizes) {
  for (unsigned es : {4u, 8u})
    for (int n = 0; n <= harsanyi::kMaxPlayers; ++n) {
      const int mg = ix::column_max_group(es);
      EXPECT_LE(mg, ix::kKernelMaxGroup);
      const ix::PassPlan plan = ix::make_pass_plan(n, ix::kKernelTile.tile_bits, mg);
      int covered = plan.low_bits;
      for (int g = 0; g < plan.groups; ++g) {
        if (ix::is_wide_group(plan.count[g])) {
          EXPECT_GE(plan.first[g], ix::kWideLaneBits);
        } else {
          EXPECT_LE(plan.count[g], ix::kKernelRegisterGroup);
        }
        covered += plan.count[g];
      }
      EXPECT_EQ(covered, n);
      EXPECT_LE(plan.groups, 64);
      // every pass reads and writes the array once: n = 28 in three passes (11 + 9 + 8 bits)
      if (n == 28) {
        EXPECT_EQ(plan.groups + 1, 3);
      }
      EXPECT_EQ(plan.low_bits, std::min(n, ix::kKernelTile.tile_bits));
    }
}

TEST(CudaIndex, ReversalIsComplementInRow) {
  for (int n = 0; n <= 6; ++n)
    for (std::uint64_t k = 0; k < (std::uint64_t{3} << n); ++k) {
      const std::uint64_t j = ix::reversed_element(k, n);
      const std::uint64_t len = std::uint64_t{1} << n;
      EXPECT_EQ(j >> n, k >> n);
      EXPECT_EQ(j & (len - 1), len - 1 - (k & (len - 1)));
      EXPECT_EQ(ix::reversed_element(j, n), k);
    }
}


// ---------------------------------------------------------------------------------------------
// Shared-memory passes (LatticePasses::Cluster): smem_pass_kernel replayed thread by thread,
// with each barrier between its phases (load, rounds, the last round across the cluster).

namespace {

struct MoebiusCpu {
  template <class T>
  static void apply(T& lo, T& hi) {
    hi -= lo;
  }
};
struct ZetaTCpu {
  template <class T>
  static void apply(T& lo, T& hi) {
    lo += hi;
  }
};

// Calls visit(rank, thread, index within the thread, extended index e, element) for every
// load of a cluster tile, in the order of the kernel's load loop.
template <class Visit>
void smem_loads(std::uint64_t tile, const ix::SmemPass& p, Visit visit) {
  const unsigned threads = ix::smem_threads(p), per_thread = 1u << p.reg_bits;
  const std::uint64_t stride = ix::smem_load_stride(p);
  for (unsigned rank = 0; rank < (1u << p.rank_bits); ++rank)
    for (unsigned t = 0; t < threads; ++t) {
      const std::uint64_t base = ix::smem_element(tile, (rank << p.buffer_bits) | t, p);
      for (unsigned r = 0; r < per_thread; ++r) {
        const unsigned e = (rank << p.buffer_bits) | (r * threads + t);
        ASSERT_EQ(ix::smem_element(tile, e, p), base + r * stride)
            << "the loads of a thread do not walk one stride";
        visit(rank, t, r, e, base + r * stride);
      }
    }
}

// The cube elements (extended indices) of cube k of thread t of block `rank` in round `round`,
// as the kernel forms them: e0 = smem_cube_element(o, 0, ...), element j = e0 | (j << x0).
std::vector<unsigned> smem_cube(const ix::SmemPass& p, int round, unsigned rank, unsigned k,
                                unsigned t) {
  const int x0 = ix::smem_round_first(p, round), w = ix::smem_round_width(p, round);
  const bool last = round + 1 == ix::smem_rounds(p);
  const unsigned o = ix::smem_cube_index(p, w, last, rank, k, t);
  const unsigned e0 = ix::smem_cube_element(o, 0, x0, w);
  std::vector<unsigned> cube(1u << w);
  for (unsigned j = 0; j < cube.size(); ++j) {
    cube[j] = e0 | (j << x0);
    EXPECT_EQ(cube[j], ix::smem_cube_element(o, j, x0, w));
  }
  return cube;
}

// The kernel's slot of extended index e in its block's buffer, as the kernel computes it for
// cube element j: the slot of e0 XOR the slot of j << x0 (the swizzle is linear).
unsigned kernel_slot(unsigned e0, unsigned j, int x0, const ix::SmemPass& p) {
  const unsigned mask = (1u << p.buffer_bits) - 1;
  const unsigned slot = ix::smem_slot(e0 & mask) ^ ix::smem_slot((j << x0) & mask);
  EXPECT_EQ(slot, ix::smem_slot((e0 | (j << x0)) & mask));
  return slot;
}

// One shared-memory pass on `data` with Op, phase by phase as smem_pass_kernel runs it (one
// buffer per block of the cluster). Also checks that every element is loaded once and stored
// once, and that the last round's stores of a cube walk the stride 2^smem_element_bit.
template <class Op, class T>
void emulate_smem_pass(std::vector<T>& data, const ix::SmemPass& p) {
  ASSERT_TRUE(ix::smem_pass_valid(p));
  const unsigned threads = ix::smem_threads(p), ranks = 1u << p.rank_bits;
  const unsigned m_count = 1u << p.buffer_bits;
  const std::uint64_t tiles = ix::smem_tiles(data.size(), p);
  ASSERT_EQ(tiles << (p.buffer_bits + p.rank_bits), data.size());
  const int rounds = ix::smem_rounds(p);
  std::vector<std::vector<T>> buf(ranks, std::vector<T>(m_count));
  std::vector<unsigned char> loaded(data.size(), 0), stored(data.size(), 0);
  for (std::uint64_t tile = 0; tile < tiles; ++tile) {
    smem_loads(tile, p, [&](unsigned rank, unsigned, unsigned, unsigned e, std::uint64_t elem) {
      ASSERT_LT(elem, data.size());
      ++loaded[elem];
      buf[rank][ix::smem_slot(e & (m_count - 1))] = data[elem];
    });
    for (int round = 0; round < rounds; ++round) {
      const bool last = round + 1 == rounds;
      const int x0 = ix::smem_round_first(p, round), w = ix::smem_round_width(p, round);
      if (!last) {
        ASSERT_LE(x0 + w, p.buffer_bits) << "a round before the last leaves the block";
      }
      // every element of the cluster tile in exactly one cube of the round (no two threads
      // touch a slot between two barriers)
      std::vector<int> touched(std::size_t{ranks} << p.buffer_bits, 0);
      for (unsigned rank = 0; rank < ranks; ++rank)
        for (unsigned t = 0; t < threads; ++t)
          for (unsigned k = 0; k < ix::smem_cubes(p, w); ++k) {
            const std::vector<unsigned> cube = smem_cube(p, round, rank, k, t);
            const unsigned e0 = cube[0];
            std::vector<T> x(cube.size());
            for (unsigned j = 0; j < cube.size(); ++j) {
              const unsigned src = last ? (cube[j] >> p.buffer_bits) : rank;
              ASSERT_LT(src, ranks);
              if (last) {
                ASSERT_EQ(src, (j << x0) >> p.buffer_bits) << "the rank is not given by j";
              } else {
                ASSERT_LT(cube[j], m_count);
              }
              ++touched[(std::size_t{src} << p.buffer_bits) | (cube[j] & (m_count - 1))];
              x[j] = buf[src][kernel_slot(e0, j, x0, p)];
            }
            for (int b = 0; b < w; ++b)
              for (unsigned j = 0; j < cube.size(); ++j)
                if (!(j & (1u << b))) Op::apply(x[j], x[j | (1u << b)]);
            for (unsigned j = 0; j < cube.size(); ++j) {
              if (!last) {
                buf[rank][kernel_slot(e0, j, x0, p)] = x[j];
              } else {
                const std::uint64_t elem = ix::smem_element(tile, cube[j], p);
                ASSERT_EQ(elem, ix::smem_element(tile, e0, p) +
                                    (std::uint64_t{j} << ix::smem_element_bit(x0, p)));
                ASSERT_LT(elem, data.size());
                ++stored[elem];
                data[elem] = x[j];
              }
            }
          }
      for (std::size_t i = 0; i < touched.size(); ++i)
        ASSERT_EQ(touched[i], 1) << "round " << round << " touches slot " << i << " "
                                 << touched[i] << "x";
    }
  }
  for (std::size_t e = 0; e < data.size(); ++e) {
    ASSERT_EQ(loaded[e], 1) << "element " << e << " loaded " << int(loaded[e]) << "x";
    ASSERT_EQ(stored[e], 1) << "element " << e << " stored " << int(stored[e]) << "x";
  }
}

// Both passes of `plan` against the CPU kernels, bitwise, on random rows.
template <class T>
void emulate_smem_plan(const ix::SmemPlan& plan, int n, std::size_t samples) {
  ASSERT_TRUE(plan.valid);
  EXPECT_EQ(plan.pass[0].hi - plan.pass[0].lo + ix::smem_group_bits(plan.pass[1]), n);
  EXPECT_EQ(plan.pass[1].first, plan.pass[0].hi);
  std::mt19937_64 rng(1234 + n);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> input(samples << n);
  for (auto& v : input) v = static_cast<T>(u(rng));
  const auto both_passes = [&](auto op, void (*cpu)(T*, int, std::size_t), const char* what) {
    using Op = decltype(op);
    std::vector<T> got = input, expect = input;
    cpu(expect.data(), n, samples);
    emulate_smem_pass<Op>(got, plan.pass[0]);
    emulate_smem_pass<Op>(got, plan.pass[1]);
    ASSERT_EQ(0, std::memcmp(got.data(), expect.data(), sizeof(T) * got.size()))
        << what << " differs from the CPU kernel";
  };
  both_passes(MoebiusCpu{}, &harsanyi::moebius_transform<T>, "Moebius");
  both_passes(ZetaTCpu{}, &harsanyi::zeta_transpose<T>, "zeta transpose");
}

// Bit order: every element gets bits 0..n-1 in increasing order, each once, over both passes.
void replay_smem_plan(const ix::SmemPlan& plan, int n, std::uint64_t samples) {
  Replay rep(n, samples);
  for (const ix::SmemPass& p : plan.pass) {
    const unsigned threads = ix::smem_threads(p), ranks = 1u << p.rank_bits;
    const int rounds = ix::smem_rounds(p);
    for (std::uint64_t tile = 0; tile < ix::smem_tiles(rep.total, p); ++tile)
      for (int round = 0; round < rounds; ++round) {
        const bool last = round + 1 == rounds;
        const int x0 = ix::smem_round_first(p, round), w = ix::smem_round_width(p, round);
        for (unsigned rank = 0; rank < ranks; ++rank)
          for (unsigned t = 0; t < threads; ++t)
            for (unsigned k = 0; k < ix::smem_cubes(p, w); ++k) {
              const std::vector<unsigned> cube = smem_cube(p, round, rank, k, t);
              for (int b = 0; b < w; ++b)
                for (unsigned j = 0; j < cube.size(); ++j) {
                  const unsigned e = last ? cube[j] : (rank << p.buffer_bits) | cube[j];
                  const unsigned pe = e ^ (1u << (x0 + b));
                  rep.update(ix::smem_element(tile, e, p), ix::smem_element(tile, pe, p),
                             ix::smem_element_bit(x0 + b, p));
                }
            }
      }
  }
  for (std::uint64_t e = 0; e < rep.total; ++e) {
    ASSERT_EQ(rep.bits[e].size(), static_cast<std::size_t>(n)) << "element " << e;
    for (int b = 0; b < n; ++b) ASSERT_EQ(rep.bits[e][b], b) << "element " << e << " out of order";
  }
}

// Shared-memory banks a warp's access touches more than once (4-byte banks; an 8-byte access
// is served per half-warp, so each half must use distinct 8-byte bank pairs).
int bank_conflicts(const std::vector<unsigned>& slots, unsigned element_size) {
  int conflicts = 0;
  if (element_size == 4) {
    std::set<unsigned> banks;
    for (unsigned s : slots) banks.insert(s % 32);
    conflicts += static_cast<int>(slots.size() - banks.size());
  } else {
    for (std::size_t half = 0; half < slots.size(); half += 16) {
      std::set<unsigned> banks;
      for (std::size_t i = half; i < std::min(slots.size(), half + 16); ++i)
        banks.insert(slots[i] % 16);
      conflicts += static_cast<int>(std::min<std::size_t>(16, slots.size() - half) - banks.size());
    }
  }
  return conflicts;
}

// Whether a warp's 32 global addresses fill whole 32-byte sectors (32·size / 32 of them).
bool whole_sectors(const std::vector<std::uint64_t>& elements, unsigned element_size) {
  std::set<std::uint64_t> sectors;
  for (std::uint64_t e : elements) sectors.insert(e * element_size / 32);
  return sectors.size() * 32 == elements.size() * element_size;
}

// Bank conflicts and sector use of every shared and global access of one tile of a real pass.
void check_access_patterns(const ix::SmemPass& p, unsigned element_size) {
  const unsigned threads = ix::smem_threads(p), ranks = 1u << p.rank_bits;
  const unsigned mask = (1u << p.buffer_bits) - 1;
  ASSERT_EQ(threads % 32, 0u);
  int conflicts = 0, partial = 0;
  // loads: per (rank, warp, r), the 32 lanes' elements and slots
  for (unsigned rank = 0; rank < ranks; ++rank)
    for (unsigned warp = 0; warp < threads / 32; ++warp)
      for (unsigned r = 0; r < (1u << p.reg_bits); ++r) {
        std::vector<std::uint64_t> elems;
        std::vector<unsigned> slots;
        for (unsigned lane = 0; lane < 32; ++lane) {
          const unsigned m = r * threads + warp * 32 + lane;
          elems.push_back(ix::smem_element(0, (rank << p.buffer_bits) | m, p));
          slots.push_back(ix::smem_slot(m));
        }
        partial += whole_sectors(elems, element_size) ? 0 : 1;
        conflicts += bank_conflicts(slots, element_size);
      }
  const int rounds = ix::smem_rounds(p);
  for (int round = 0; round < rounds; ++round) {
    const bool last = round + 1 == rounds;
    const int w = ix::smem_round_width(p, round);
    for (unsigned rank = 0; rank < (last ? ranks : 1u); ++rank)
      for (unsigned warp = 0; warp < threads / 32; ++warp)
        for (unsigned k = 0; k < ix::smem_cubes(p, w); ++k)
          for (unsigned j = 0; j < (1u << w); ++j) {
            std::vector<std::uint64_t> elems;
            std::vector<unsigned> slots;
            std::set<unsigned> sources;
            for (unsigned lane = 0; lane < 32; ++lane) {
              const unsigned e = smem_cube(p, round, rank, k, warp * 32 + lane)[j];
              slots.push_back(ix::smem_slot(e & mask));
              elems.push_back(ix::smem_element(0, e, p));
              sources.insert(e >> p.buffer_bits);
            }
            EXPECT_EQ(sources.size(), 1u) << "a warp's access spans two blocks' buffers";
            conflicts += bank_conflicts(slots, element_size);
            if (last) partial += whole_sectors(elems, element_size) ? 0 : 1;
          }
  }
  EXPECT_EQ(conflicts, 0) << "shared-memory bank conflicts";
  EXPECT_EQ(partial, 0) << "global accesses that use sectors partly";
}

}  // namespace

TEST(CudaIndex, SmemPlansTakeTwoPassesWhereColumnsTakeThree) {
  for (unsigned es : {4u, 8u})
    for (int n = 21; n <= (es == 4 ? 29 : 28); ++n) {
      SCOPED_TRACE("n=" + std::to_string(n) + " element " + std::to_string(es));
      const ix::PassPlan columns =
          ix::make_pass_plan(n, ix::kKernelTile.tile_bits, ix::column_max_group(es));
      EXPECT_EQ(1 + columns.groups, 3);
      const ix::SmemPlan plan = ix::make_smem_plan(n, es);
      ASSERT_TRUE(plan.valid);
      const ix::SmemPass& p1 = plan.pass[0];
      const ix::SmemPass& p2 = plan.pass[1];
      EXPECT_TRUE(ix::smem_plan_fits_kernels(plan, es));
      EXPECT_EQ(std::size_t{es} << p1.buffer_bits, std::size_t{ix::kSmemBufferBytes});
      EXPECT_EQ(p1.reg_bits, 5);
      EXPECT_EQ(p1.lo, 0);
      EXPECT_EQ(p1.rank_bits, 0);
      EXPECT_TRUE(ix::smem_rounds(p1) == 2 || ix::smem_rounds(p1) == 3);
      EXPECT_EQ(std::size_t{es} << p2.column_bits, 32u);
      EXPECT_EQ(p2.lo, p2.column_bits);
      EXPECT_EQ(ix::smem_rounds(p2), 3);
      EXPECT_EQ(p2.rank_bits, (es == 8 && n == 28) || (es == 4 && n == 29) ? 2 : 1);
      EXPECT_EQ(p1.hi + ix::smem_group_bits(p2), n);
      EXPECT_LE(ix::smem_threads(p1), 1024u);
    }
  EXPECT_FALSE(ix::make_smem_plan(30, 4).valid);
  EXPECT_FALSE(ix::make_smem_plan(29, 8).valid);
}

TEST(CudaIndex, SmemPassesReplayOnSmallShapes) {
  // Scaled-down buffers, registers and sectors: every n the plan takes, 1 and 3 rows, both
  // rank counts (4 blocks per cluster when pass 1 would overflow the buffer).
  int plans = 0, four_ranks = 0;
  for (unsigned es : {4u, 8u})
    for (unsigned buffer : {128u, 512u})
      for (int reg_bits : {1, 2, 3})
        for (unsigned sector : {8u, 16u, 32u})
          for (int n = 1; n <= 16; ++n) {
            const ix::SmemPlan plan = ix::make_smem_plan(n, es, buffer, reg_bits, sector);
            if (!plan.valid) continue;
            SCOPED_TRACE("n=" + std::to_string(n) + " es=" + std::to_string(es) +
                         " buffer=" + std::to_string(buffer) + " reg_bits=" +
                         std::to_string(reg_bits) + " sector=" + std::to_string(sector));
            ++plans;
            four_ranks += plan.pass[1].rank_bits == 2 ? 1 : 0;
            for (std::uint64_t samples : {1, 3}) {
              replay_smem_plan(plan, n, samples);
              if (es == 8)
                emulate_smem_plan<double>(plan, n, samples);
              else
                emulate_smem_plan<float>(plan, n, samples);
              if (HasFatalFailure()) return;
            }
          }
  EXPECT_GT(plans, 50);
  EXPECT_GT(four_ranks, 5);
}

TEST(CudaIndex, SmemPassesOfTheKernelShapeEqualTheCpuBitwise) {
  // The kernels' own shapes (128 KiB per block, 1024 or 512 threads), emulated thread by
  // thread: n = 21 (8 + 13 bits, clusters of 2), clusters of 4 (forced: doubles at n = 21,
  // floats at n = 22), and pass 1 in three rounds (doubles at n = 24: 11 + 13 bits).
  const ix::SmemPlan f21 = ix::make_smem_plan(21, 4), d21 = ix::make_smem_plan(21, 8);
  const ix::SmemPlan d21x4 = ix::make_smem_plan(21, 8, ix::kSmemBufferBytes, 5, 32, 2);
  const ix::SmemPlan f22x4 = ix::make_smem_plan(22, 4, ix::kSmemBufferBytes, 5, 32, 2);
  const ix::SmemPlan d24 = ix::make_smem_plan(24, 8);
  EXPECT_EQ(d21x4.pass[1].rank_bits, 2);
  EXPECT_EQ(f22x4.pass[1].rank_bits, 2);
  EXPECT_EQ(ix::smem_rounds(d24.pass[0]), 3);
  for (const ix::SmemPlan* plan : {&f21, &d21, &d21x4, &f22x4, &d24})
    EXPECT_TRUE(ix::smem_plan_fits_kernels(*plan, plan == &f21 || plan == &f22x4 ? 4 : 8));
  emulate_smem_plan<float>(f21, 21, 2);
  emulate_smem_plan<double>(d21, 21, 1);
  emulate_smem_plan<double>(d21x4, 21, 1);
  emulate_smem_plan<float>(f22x4, 22, 1);
  emulate_smem_plan<double>(d24, 24, 1);
}

TEST(CudaIndex, SmemPassesHaveNoBankConflictsAndWholeSectors) {
  for (unsigned es : {4u, 8u})
    for (int n = 21; n <= (es == 4 ? 29 : 28); ++n) {
      SCOPED_TRACE("n=" + std::to_string(n) + " element " + std::to_string(es));
      const ix::SmemPlan plan = ix::make_smem_plan(n, es);
      ASSERT_TRUE(plan.valid);
      check_access_patterns(plan.pass[0], es);
      check_access_patterns(plan.pass[1], es);
    }
}
