// The shared benchmark driver: flags, preamble, sweep, timing, table, JSON, exit code.
#include "driver.h"

#include <fmt/core.h>
#include <mpi.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "communicator.h"
#include "harsanyi_config.h"
#include "mpi_check.h"
#include "system_memory.h"

#ifndef HARSANYI_BENCH_BUILD_TYPE
#define HARSANYI_BENCH_BUILD_TYPE "unknown"
#endif
#ifndef HARSANYI_BENCH_KERNEL_FLAGS
#define HARSANYI_BENCH_KERNEL_FLAGS ""
#endif

namespace harsanyi::bench {

namespace {

constexpr int kSchemaVersion = 1;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Environment: what the preamble and the JSON context record.

struct Context {
  std::string date, host, cpu, compiler, openmp, fmt_version, json_version, command_line;
  std::string loadavg;  // 1, 5, 15-minute load averages at start (others' work skews timings)
  int logical_cpus = 0, max_threads = 0;
  // MPI ops only
  std::string mpi_library;
  int ranks = 1, hosts = 1, ranks_on_node = 1;
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string m = line.substr(colon + 1);
        m.erase(0, m.find_first_not_of(" \t"));
        return m;
      }
    }
  }
  return "unknown CPU";
}

Context make_context(int argc, char** argv) {
  Context c;
  c.date = utc_now();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  c.host = host;
  c.cpu = cpu_model();
#if defined(__clang__)
  c.compiler = fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  c.compiler = fmt::format("g++ {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  c.compiler = "unknown";
#endif
#ifdef _OPENMP
  c.openmp = std::to_string(_OPENMP);
#else
  c.openmp = "none";
#endif
  c.fmt_version = fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100,
                              FMT_VERSION % 100);
  c.json_version = fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR,
                               NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH);
  for (int i = 0; i < argc; ++i) c.command_line += (i ? " " : "") + std::string(argv[i]);
  std::ifstream load("/proc/loadavg");
  std::string l1, l5, l15;
  if (load >> l1 >> l5 >> l15) c.loadavg = l1 + " " + l5 + " " + l15;
  c.logical_cpus = omp_get_num_procs();
  c.max_threads = omp_get_max_threads();
  return c;
}

// ---------------------------------------------------------------------------------------------
// Flags

long long parse_int(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw UsageError(fmt::format("{}: expected an integer, got '{}'", flag, v));
  }
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void print_help(const OpDef& op) {
  fmt::print(
      "{}: {}\n\n"
      "  -b, --minn N      smallest n (players)                    [{}]\n"
      "  -e, --maxn N      largest n (at most {})                  [{}]\n"
      "  -i, --step N      n increment                             [1]\n"
      "  -n, --reps N      timed repetitions (median, min, max)    [{}]\n"
      "  -w, --warmup N    untimed warm-up runs per kernel         [{}]\n"
      "  -t, --threads L   OpenMP thread counts, e.g. 1,2          [1,max]\n"
      "  -s, --samples N   samples (set functions) per batch       [{}]\n"
      "  -d, --dtypes L    element types: f32,f64                  [f32,f64]\n"
      "  -j, --json FILE   also write the results as JSON\n"
      "  -c, --check 0|1   check correctness                       [1]\n",
      op.name, op.summary, op.default_min_n, op.max_allowed_n, op.default_max_n, op.default_reps,
      op.default_warmup,
      op.default_samples == 0 ? std::string("threads") : std::to_string(op.default_samples));
  for (const auto& f : op.flags)
    fmt::print("      --{:<12}{} [{}]\n", f.name + " N", f.help, f.default_value);
  fmt::print("\nExit code: 0 all checks passed, 1 a check failed, 2 bad usage or a case skipped.\n");
}

// Returns false when --help was asked. `default_threads`: -t when not given.
bool parse_flags(const OpDef& op, int argc, char** argv, Options& o,
                 const std::vector<int>& default_threads, bool print) {
  o.min_n = op.default_min_n;
  o.max_n = op.default_max_n;
  o.reps = op.default_reps;
  o.warmup = op.default_warmup;
  o.samples = 0;
  for (const auto& f : op.flags) o.extra[f.name] = f.default_value;
  o.threads = default_threads;
  o.dtypes = op.default_dtypes;

  static const std::map<std::string, char> long_names = {
      {"minn", 'b'},    {"maxn", 'e'},    {"step", 'i'},   {"reps", 'n'},  {"warmup", 'w'},
      {"threads", 't'}, {"samples", 's'}, {"dtypes", 'd'}, {"json", 'j'},  {"check", 'c'}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool has_value = false;
    char key = 0;
    std::string extra_name;
    if (arg == "-h" || arg == "--help") {
      if (print) print_help(op);
      return false;
    }
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (auto it = long_names.find(name); it != long_names.end()) {
        key = it->second;
      } else if (o.extra.count(name)) {
        extra_name = name;
      } else {
        throw UsageError(fmt::format("unknown flag '{}' (see --help)", arg));
      }
    } else if (arg.size() >= 2 && arg[0] == '-') {
      key = arg[1];
      if (arg.size() > 2) {
        value = arg.substr(2);
        has_value = true;
      }
    } else {
      throw UsageError(fmt::format("unexpected argument '{}' (see --help)", arg));
    }
    if (!has_value) {
      if (i + 1 >= argc) throw UsageError(fmt::format("{} needs a value", arg));
      value = argv[++i];
    }
    if (!extra_name.empty()) {
      // an op flag with an integer default takes integers; others (paths, names) take text
      const auto def = std::find_if(op.flags.begin(), op.flags.end(),
                                    [&](const ExtraFlag& f) { return f.name == extra_name; });
      bool integer_default = def != op.flags.end() && !def->default_value.empty();
      if (integer_default) {
        try {
          parse_int("", def->default_value);
        } catch (const UsageError&) {
          integer_default = false;
        }
      }
      if (integer_default) parse_int("--" + extra_name, value);
      o.extra[extra_name] = value;
      o.given.push_back(extra_name);
      continue;
    }
    const std::string flag = arg.substr(0, 2) == "--" ? arg : std::string("-") + key;
    switch (key) {
      case 'b': o.min_n = static_cast<int>(parse_int(flag, value)); break;
      case 'e': o.max_n = static_cast<int>(parse_int(flag, value)); break;
      case 'i': o.step_n = static_cast<int>(parse_int(flag, value)); break;
      case 'n': o.reps = static_cast<int>(parse_int(flag, value)); break;
      case 'w': o.warmup = static_cast<int>(parse_int(flag, value)); break;
      case 's': {
        const long long s = parse_int(flag, value);
        if (s < 1) throw UsageError("-s: samples must be >= 1");
        o.samples = static_cast<std::size_t>(s);
        break;
      }
      case 't':
        o.threads.clear();
        for (const auto& t : split_commas(value)) {
          const long long x = parse_int(flag, t);
          if (x < 1 || x > 4096) throw UsageError(fmt::format("-t: bad thread count {}", x));
          o.threads.push_back(static_cast<int>(x));
        }
        if (o.threads.empty()) throw UsageError("-t: empty list");
        break;
      case 'd':
        o.dtypes.clear();
        for (const auto& d : split_commas(value)) {
          if (d == "f32" || d == "float")
            o.dtypes.push_back(Dtype::f32);
          else if (d == "f64" || d == "double")
            o.dtypes.push_back(Dtype::f64);
          else
            throw UsageError(fmt::format("-d: unknown dtype '{}' (f32, f64)", d));
        }
        if (o.dtypes.empty()) throw UsageError("-d: empty list");
        break;
      case 'j': o.json_path = value; break;
      case 'c': o.check = parse_int(flag, value) != 0; break;
      default: throw UsageError(fmt::format("unknown flag '{}' (see --help)", arg));
    }
  }
  if (o.min_n < 1 || o.max_n < o.min_n || o.max_n > op.max_allowed_n)
    throw UsageError(fmt::format("need 1 <= -b ({}) <= -e ({}) <= {}", o.min_n, o.max_n,
                                 op.max_allowed_n));
  if (o.step_n < 1) throw UsageError("-i: step must be >= 1");
  if (o.reps < 1) throw UsageError("-n: repetitions must be >= 1");
  if (o.warmup < 0) throw UsageError("-w: warm-up runs must be >= 0");
  return true;
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::string join_dtypes(const std::vector<Dtype>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::string(dtype_name(v[i]));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Table

std::vector<Column> all_columns(const OpDef& op) {
  std::vector<Column> cols = {{"n", "-", Fmt::integer, 0, 3},
                              {"dtype", "-", Fmt::text, 0, 6},
                              {"threads", "-", Fmt::integer, 0, 8},
                              {"samples", "-", Fmt::integer, 0, 8}};
  if (op.mpi) cols.push_back({"ranks", "-", Fmt::integer, 0, 6});
  cols.insert(cols.end(), op.columns.begin(), op.columns.end());
  cols.push_back({"check", "-", Fmt::text, 0, 6});
  for (auto& c : cols)
    c.width = std::max({c.width, static_cast<int>(c.name.size()) + 1,
                        static_cast<int>(c.unit.size()) + 3});
  return cols;
}

std::string format_cell(const Column& c, const Row& row) {
  const auto it = row.find(c.name);
  if (it == row.end()) return "-";
  const Cell& v = it->second;
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  const double x = std::holds_alternative<long long>(v) ? static_cast<double>(std::get<long long>(v))
                                                        : std::get<double>(v);
  switch (c.fmt) {
    case Fmt::integer:
      return std::holds_alternative<long long>(v) ? std::to_string(std::get<long long>(v))
                                                  : fmt::format("{:.0f}", x);
    case Fmt::sci: return fmt::format("{:.{}e}", x, c.precision);
    case Fmt::fixed:
    case Fmt::text: return fmt::format("{:.{}f}", x, c.precision);
  }
  return "?";
}

void print_header(const std::vector<Column>& cols) {
  std::string names = "#", units = "#";
  for (const auto& c : cols) {
    names += fmt::format("{:>{}}", c.name, c.width);
    units += fmt::format("{:>{}}", c.unit == "-" ? std::string("-") : "(" + c.unit + ")", c.width);
  }
  fmt::print("{}\n{}\n", names, units);
}

void print_row(const std::vector<Column>& cols, const Row& row) {
  std::string line = " ";
  for (const auto& c : cols) line += fmt::format("{:>{}}", format_cell(c, row), c.width);
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

nlohmann::json cell_json(const Cell& v) {
  if (const auto* i = std::get_if<long long>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::get<std::string>(v);
}

// ---------------------------------------------------------------------------------------------
// Timing

// comm: MPI ops (barrier before each repetition and after it, untimed; each repetition's time
// is the maximum over the ranks); nullptr otherwise.
Timing time_kernel(const Kernel& k, CaseState& state, const Options& o, int calls,
                   std::vector<double>& times, const mpi::Communicator* comm) {
  using clock = std::chrono::steady_clock;
  for (int w = 0; w < o.warmup; ++w) {
    if (k.prepare) k.prepare(state);
    if (comm) comm->barrier();
    for (int i = 0; i < calls; ++i) k.run(state, i);
    if (comm) comm->barrier();
  }
  times.clear();
  for (int r = 0; r < o.reps; ++r) {
    if (k.prepare) k.prepare(state);
    if (comm) comm->barrier();
    const auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) k.run(state, i);
    const auto t1 = clock::now();
    if (comm) comm->barrier();
    times.push_back(std::chrono::duration<double>(t1 - t0).count() / calls);
  }
  if (comm && comm->distributed())
    HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, times.data(), static_cast<int>(times.size()),
                                     MPI_DOUBLE, MPI_MAX, comm->comm()));
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t m = sorted.size();
  Timing t;
  t.median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  t.min = sorted.front();
  t.max = sorted.back();
  return t;
}

// ---------------------------------------------------------------------------------------------
// MPI ops

// MPI for the run of an MPI op: initialised here when the caller has not (then finalised when
// this ends, on every return path), the world communicator, the ranks of this node and the hosts.
class MpiJob {
 public:
  MpiJob(int* argc, char*** argv) {
    int init = 0;
    HARSANYI_MPI_CHECK(MPI_Initialized(&init));
    if (!init) {
      int provided = 0;
      // FUNNELED: OpenMP threads compute, only the main thread calls MPI.
      HARSANYI_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
      HARSANYI_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
      owned_ = true;
    }
    world_ = std::make_unique<mpi::Communicator>(mpi::Communicator::world());
    HARSANYI_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_->rank(),
                                           MPI_INFO_NULL, &node_));
    int node_rank = 0;
    HARSANYI_MPI_CHECK(MPI_Comm_size(node_, &ranks_on_node_));
    HARSANYI_MPI_CHECK(MPI_Comm_rank(node_, &node_rank));
    hosts_ = static_cast<int>(world_->sum(std::int64_t{node_rank == 0 ? 1 : 0}));
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int len = 0;
    HARSANYI_MPI_CHECK(MPI_Get_library_version(lib, &len));
    library_.assign(lib, static_cast<std::size_t>(std::max(0, len)));
    library_ = library_.substr(0, library_.find_first_of("\n,"));  // "Open MPI v4.1.4"
  }
  ~MpiJob() {
    if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
    world_.reset();
    if (owned_) MPI_Finalize();
  }
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;

  const mpi::Communicator& world() const { return *world_; }
  int ranks_on_node() const { return ranks_on_node_; }
  int hosts() const { return hosts_; }
  const std::string& library() const { return library_; }

  // Sum / minimum of x over the ranks of this node.
  std::uint64_t node_sum(std::uint64_t x) const { return node_reduce(x, MPI_SUM); }
  std::uint64_t node_min(std::uint64_t x) const { return node_reduce(x, MPI_MIN); }

 private:
  std::uint64_t node_reduce(std::uint64_t x, MPI_Op op) const {
    HARSANYI_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_UINT64_T, op, node_));
    return x;
  }
  bool owned_ = false;
  std::unique_ptr<mpi::Communicator> world_;
  MPI_Comm node_ = MPI_COMM_NULL;
  int ranks_on_node_ = 1, hosts_ = 1;
  std::string library_;
};

// Every rank's text, in rank order, on rank 0 (empty elsewhere).
std::vector<std::string> gather_text(const mpi::Communicator& comm, const std::string& mine) {
  if (!comm.distributed()) return {mine};
  const int P = comm.size();
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(P)), displs(lens.size());
  HARSANYI_MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm.comm()));
  int total = 0;
  for (int q = 0; q < P; ++q) displs[q] = total, total += lens[q];
  std::string all(static_cast<std::size_t>(comm.root() ? total : 0), '\0');
  HARSANYI_MPI_CHECK(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(),
                                 displs.data(), MPI_CHAR, 0, comm.comm()));
  std::vector<std::string> out;
  if (comm.root())
    for (int q = 0; q < P; ++q) out.push_back(all.substr(displs[q], lens[q]));
  return out;
}

// The notes of a collective verdict: each rank's non-empty text, prefixed by its rank when the job
// has several.
void add_rank_notes(std::vector<std::string>& notes, const std::string& label, const char* what,
                    const std::vector<std::string>& texts) {
  for (std::size_t q = 0; q < texts.size(); ++q)
    if (!texts[q].empty())
      notes.push_back(texts.size() > 1
                          ? fmt::format("{}: {} on rank {}: {}", label, what, q, texts[q])
                          : fmt::format("{}: {}: {}", label, what, texts[q]));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

const char* dtype_name(Dtype d) { return d == Dtype::f32 ? "f32" : "f64"; }
std::size_t dtype_size(Dtype d) { return d == Dtype::f32 ? sizeof(float) : sizeof(double); }

long long Options::extra_int(const std::string& name) const {
  const auto it = extra.find(name);
  if (it == extra.end()) throw std::logic_error("bench: no op flag --" + name);
  return std::stoll(it->second);
}

bool Options::extra_given(const std::string& name) const {
  return std::find(given.begin(), given.end(), name) != given.end();
}

namespace {
inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
template <class T> void fill_uniform_impl(T* x, std::size_t len, std::uint64_t seed) {
  std::uint64_t s = seed;
  for (std::size_t i = 0; i < len; ++i) {
    // 53 random bits -> [0, 1) -> [-1, 1)
    const double u = static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53;
    x[i] = static_cast<T>(2.0 * u - 1.0);
  }
}
}  // namespace

void fill_uniform(double* x, std::size_t len, std::uint64_t seed) { fill_uniform_impl(x, len, seed); }
void fill_uniform(float* x, std::size_t len, std::uint64_t seed) { fill_uniform_impl(x, len, seed); }

int run_benchmark(const OpDef& op, int argc, char** argv) {
  // MPI ops: MPI up before anything prints, so that only rank 0 prints.
  std::unique_ptr<MpiJob> job;
  if (op.mpi) job = std::make_unique<MpiJob>(&argc, &argv);
  const mpi::Communicator* comm = job ? &job->world() : nullptr;
  const bool several = comm && comm->size() > 1;  // exceptions then end the job (see OpDef::mpi)
  const bool printer = !comm || comm->root();

  Context ctx = make_context(argc, argv);
  std::vector<int> default_threads = {1};
  if (job) {
    ctx.mpi_library = job->library();
    ctx.ranks = comm->size();
    ctx.hosts = job->hosts();
    ctx.ranks_on_node = job->ranks_on_node();
    default_threads = {
        std::max(1, std::min(ctx.max_threads, ctx.logical_cpus / ctx.ranks_on_node))};
  } else if (ctx.max_threads > 1) {
    default_threads.push_back(ctx.max_threads);
  }
  Options o;
  try {
    if (!parse_flags(op, argc, argv, o, default_threads, printer)) return 0;
  } catch (const UsageError& e) {
    if (printer) fmt::print(stderr, "{}: {}\n", op.name, e.what());
    return 2;
  }

  // Preamble
  std::string op_flags;
  for (const auto& f : op.flags)
    op_flags += fmt::format("{}--{} {}{}", op_flags.empty() ? "" : " ", f.name, o.extra[f.name],
                            o.extra_given(f.name) ? "" : " (default)");
  const std::string samples_text =
      o.samples ? std::to_string(o.samples)
                : (op.default_samples ? std::to_string(op.default_samples) : "= threads");
  const std::vector<Column> cols = all_columns(op);
  if (printer) {
    fmt::print("# harsanyi {}: {}\n", op.name, op.summary);
    fmt::print("# command  : {}\n", ctx.command_line);
    fmt::print("# date     : {}  host: {}\n", ctx.date, ctx.host);
    fmt::print("# versions : harsanyi {} (git {}), {}, OpenMP {}, fmt {}, nlohmann_json {}\n",
               HARSANYI_VERSION, HARSANYI_GIT_SHA, ctx.compiler, ctx.openmp, ctx.fmt_version,
               ctx.json_version);
    fmt::print("# build    : {} {}, CUDA kernels {} (this benchmark runs the CPU kernels)\n",
               HARSANYI_BENCH_BUILD_TYPE, HARSANYI_BENCH_KERNEL_FLAGS,
               HARSANYI_ENABLE_CUDA ? "built" : "not built");
    fmt::print("# device   : {}, {} logical CPUs, OpenMP max threads {}, load average {}\n",
               ctx.cpu, ctx.logical_cpus, ctx.max_threads,
               ctx.loadavg.empty() ? std::string("unknown") : ctx.loadavg);
    if (job)
      fmt::print("# ranks    : {} on {} hosts ({} on rank 0's node), {}\n", ctx.ranks, ctx.hosts,
                 ctx.ranks_on_node, ctx.mpi_library);
    fmt::print("# sweep    : n {}..{} step {}, dtypes {}, threads {}, samples {}\n", o.min_n,
               o.max_n, o.step_n, join_dtypes(o.dtypes), join_ints(o.threads), samples_text);
    fmt::print("# timing   : steady_clock, {} warm-up + {} timed repetitions per kernel; time = "
               "median per call, spread = (max-min)/median; check {}\n",
               o.warmup, o.reps, o.check ? "on" : "OFF");
    if (job)
      fmt::print("# MPI      : MPI_Barrier before and after every repetition (the second "
                 "untimed), a repetition's time = MPI_MAX over the ranks; samples = in all, over "
                 "the ranks\n");
    if (!op_flags.empty()) fmt::print("# op flags : {}\n", op_flags);
    for (const auto& line : op.preamble) fmt::print("# {}\n", line);
    for (int t : o.threads)
      if (t * ctx.ranks_on_node > ctx.logical_cpus) {
        if (job)
          fmt::print("# WARNING  : {} threads x {} ranks on a node > {} logical CPUs "
                     "(oversubscribed)\n",
                     t, ctx.ranks_on_node, ctx.logical_cpus);
        else
          fmt::print("# WARNING  : {} threads > {} logical CPUs (oversubscribed)\n", t,
                     ctx.logical_cpus);
      }
    fmt::print("#\n");
    print_header(cols);
    std::fflush(stdout);
  }

  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> notes;
  int failures = 0, skipped = 0;
  std::vector<double> times;

  for (int n = o.min_n; n <= o.max_n; n += o.step_n) {
    for (Dtype dt : o.dtypes) {
      for (int threads : o.threads) {
        omp_set_num_threads(threads);
        Case c{n,
               dt,
               threads,
               o.samples ? o.samples
                         : (op.default_samples ? op.default_samples
                                               : static_cast<std::size_t>(threads)),
               &o,
               comm,
               comm ? comm->rank() : 0,
               comm ? comm->size() : 1};
        Row row;
        row["n"] = static_cast<long long>(n);
        row["dtype"] = std::string(dtype_name(dt));
        row["threads"] = static_cast<long long>(threads);
        row["samples"] = static_cast<long long>(c.samples);
        if (op.mpi) row["ranks"] = static_cast<long long>(c.ranks);
        nlohmann::json timings_json = nlohmann::json::object();
        const std::string label = fmt::format("n={} {} threads={}", n, dtype_name(dt), threads);

        // Memory: MPI ops add up the ranks of a node (skipped on every rank if short anywhere).
        std::size_t need = op.memory_bytes ? op.memory_bytes(c) : 0;
        std::size_t have = need ? available_memory_bytes() : 0;
        bool skip = need && need > have;
        if (job) {
          need = job->node_sum(need);
          have = job->node_min(need ? available_memory_bytes() : 0);
          skip = comm->any(need && need > have);
        }
        if (skip) {
          row["check"] = std::string("SKIP");
          notes.push_back(fmt::format("{}: skipped, needs {} but {} available{}", label,
                                      format_bytes(static_cast<double>(need)),
                                      format_bytes(static_cast<double>(have)),
                                      job ? " (on rank 0's node)" : ""));
          ++skipped;
        } else {
          // Setup: its failure is agreed (no rank is inside a collective yet).
          std::unique_ptr<CaseState> state;
          std::string setup_error;
          try {
            state = op.setup(c);
          } catch (const std::exception& e) {
            setup_error = e.what();
          }
          const bool setup_failed = comm ? comm->any(!setup_error.empty()) : !setup_error.empty();
          if (setup_failed) {
            row["check"] = std::string("ERROR");
            add_rank_notes(notes, label, "ERROR",
                           comm ? gather_text(*comm, setup_error)
                                : std::vector<std::string>{setup_error});
            ++failures;
          } else {
            try {
              std::vector<Timing> timings;
              const int calls = op.calls ? std::max(1, op.calls(c)) : 1;
              timings_json["calls_per_rep"] = calls;
              for (const auto& k : op.kernels) {
                timings.push_back(time_kernel(k, *state, o, calls, times, comm));
                timings_json[k.name] = {{"median_s", timings.back().median},
                                        {"min_s", timings.back().min},
                                        {"max_s", timings.back().max},
                                        {"times_s", times}};
              }
              op.metrics(c, *state, timings, row);
              if (o.check) {
                omp_set_num_threads(threads);
                const CheckResult r = op.check(c, *state, row);
                const bool failed = comm ? comm->any(!r.ok) : !r.ok;
                row["check"] = std::string(failed ? "FAIL" : "ok");
                if (failed) {
                  ++failures;
                  add_rank_notes(notes, label, "FAILED",
                                 comm ? gather_text(*comm, r.ok ? std::string() : r.why)
                                      : std::vector<std::string>{r.why});
                }
              } else {
                row["check"] = std::string("off");
              }
            } catch (const std::exception& e) {
              // Other ranks may be waiting in a collective for this one: end the job.
              if (several) mpi::abort_job(fmt::format("{} {}: {}", op.name, label, e.what()), 1);
              row["check"] = std::string("ERROR");
              notes.push_back(fmt::format("{}: ERROR: {}", label, e.what()));
              ++failures;
            }
          }
        }
        if (printer) print_row(cols, row);
        nlohmann::json jr = nlohmann::json::object();
        for (const auto& col : cols) {
          const auto it = row.find(col.name);
          jr[col.name] = it == row.end() ? nlohmann::json(nullptr) : cell_json(it->second);
        }
        jr["timings"] = timings_json;
        results.push_back(jr);
      }
    }
  }
  omp_set_num_threads(ctx.max_threads);

  int code = failures ? 1 : (skipped ? 2 : 0);
  if (printer) {
    for (const auto& note : notes) fmt::print("# {}\n", note);
    fmt::print("# result   : {} rows, {} failed, {} skipped -> exit {}\n", results.size(),
               failures, skipped, code);
  }

  if (printer && !o.json_path.empty()) {
    nlohmann::json j;
    j["context"] = {{"schema_version", kSchemaVersion},
                    {"benchmark", op.name},
                    {"date", ctx.date},
                    {"host", ctx.host},
                    {"command_line", ctx.command_line},
                    {"harsanyi_version", HARSANYI_VERSION},
                    {"git_sha", HARSANYI_GIT_SHA},
                    {"build_type", HARSANYI_BENCH_BUILD_TYPE},
                    {"kernel_flags", HARSANYI_BENCH_KERNEL_FLAGS},
                    {"cuda_built", HARSANYI_ENABLE_CUDA != 0},
                    {"compiler", ctx.compiler},
                    {"openmp", ctx.openmp},
                    {"fmt_version", ctx.fmt_version},
                    {"nlohmann_json_version", ctx.json_version},
                    {"device", ctx.cpu},
                    {"logical_cpus", ctx.logical_cpus},
                    {"load_average", ctx.loadavg},
                    {"max_threads", ctx.max_threads}};
    if (job) {
      j["context"]["ranks"] = ctx.ranks;
      j["context"]["hosts"] = ctx.hosts;
      j["context"]["ranks_on_node"] = ctx.ranks_on_node;
      j["context"]["mpi_library"] = ctx.mpi_library;
      j["context"]["timing"] =
          "MPI_Barrier before and after every repetition, time = MPI_MAX over the ranks";
    }
    nlohmann::json opts = {{"min_n", o.min_n},       {"max_n", o.max_n},
                           {"step_n", o.step_n},     {"reps", o.reps},
                           {"warmup", o.warmup},     {"threads", o.threads},
                           {"samples", o.samples ? nlohmann::json(o.samples) : nlohmann::json(samples_text)},
                           {"dtypes", split_commas(join_dtypes(o.dtypes))},
                           {"check", o.check}};
    for (const auto& [name, value] : o.extra) {
      // integer flags as numbers, text flags (paths, names) as strings
      try {
        std::size_t used = 0;
        const long long x = std::stoll(value, &used);
        opts[name] = used == value.size() ? nlohmann::json(x) : nlohmann::json(value);
      } catch (const std::exception&) {
        opts[name] = value;
      }
    }
    j["options"] = opts;
    nlohmann::json cj = nlohmann::json::array();
    for (const auto& col : cols) cj.push_back({{"name", col.name}, {"unit", col.unit}});
    j["columns"] = cj;
    j["results"] = results;
    j["notes"] = notes;
    j["failures"] = failures;
    j["skipped"] = skipped;
    j["exit_code"] = code;
    std::ofstream out(o.json_path);
    out << j.dump(2) << '\n';
    if (!out) {
      fmt::print(stderr, "{}: cannot write {}\n", op.name, o.json_path);
      code = 2;
    }
  }
  // The same exit code on every rank (rank 0 may have failed to write the JSON).
  if (comm) code = static_cast<int>(comm->max(std::int64_t{code}));
  return code;
}

}  // namespace harsanyi::bench
