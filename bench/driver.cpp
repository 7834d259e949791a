// The shared benchmark driver: flags, preamble, sweep, timing, table, JSON, exit code.
#include "driver.h"

#include <fmt/core.h>
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

#include "harsanyi_config.h"
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

// Returns false when --help was asked.
bool parse_flags(const OpDef& op, int argc, char** argv, Options& o) {
  o.min_n = op.default_min_n;
  o.max_n = op.default_max_n;
  o.reps = op.default_reps;
  o.warmup = op.default_warmup;
  o.samples = 0;
  for (const auto& f : op.flags) o.extra[f.name] = f.default_value;
  const int max_threads = omp_get_max_threads();
  o.threads = {1};
  if (max_threads > 1) o.threads.push_back(max_threads);
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
      print_help(op);
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

Timing time_kernel(const Kernel& k, CaseState& state, const Options& o, int calls,
                   std::vector<double>& times) {
  using clock = std::chrono::steady_clock;
  for (int w = 0; w < o.warmup; ++w) {
    if (k.prepare) k.prepare(state);
    for (int i = 0; i < calls; ++i) k.run(state, i);
  }
  times.clear();
  for (int r = 0; r < o.reps; ++r) {
    if (k.prepare) k.prepare(state);
    const auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) k.run(state, i);
    const auto t1 = clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count() / calls);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t m = sorted.size();
  Timing t;
  t.median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  t.min = sorted.front();
  t.max = sorted.back();
  return t;
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
  const Context ctx = make_context(argc, argv);
  Options o;
  try {
    if (!parse_flags(op, argc, argv, o)) return 0;
  } catch (const UsageError& e) {
    fmt::print(stderr, "{}: {}\n", op.name, e.what());
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
  fmt::print("# sweep    : n {}..{} step {}, dtypes {}, threads {}, samples {}\n", o.min_n, o.max_n,
             o.step_n, join_dtypes(o.dtypes), join_ints(o.threads), samples_text);
  fmt::print("# timing   : steady_clock, {} warm-up + {} timed repetitions per kernel; time = "
             "median per call, spread = (max-min)/median; check {}\n",
             o.warmup, o.reps, o.check ? "on" : "OFF");
  if (!op_flags.empty()) fmt::print("# op flags : {}\n", op_flags);
  for (const auto& line : op.preamble) fmt::print("# {}\n", line);
  for (int t : o.threads)
    if (t > ctx.logical_cpus)
      fmt::print("# WARNING  : {} threads > {} logical CPUs (oversubscribed)\n", t,
                 ctx.logical_cpus);
  fmt::print("#\n");

  const std::vector<Column> cols = all_columns(op);
  print_header(cols);
  std::fflush(stdout);

  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> notes;
  int failures = 0, skipped = 0;
  std::vector<double> times;

  for (int n = o.min_n; n <= o.max_n; n += o.step_n) {
    for (Dtype dt : o.dtypes) {
      for (int threads : o.threads) {
        omp_set_num_threads(threads);
        Case c{n, dt, threads,
               o.samples ? o.samples
                         : (op.default_samples ? op.default_samples
                                               : static_cast<std::size_t>(threads)),
               &o};
        Row row;
        row["n"] = static_cast<long long>(n);
        row["dtype"] = std::string(dtype_name(dt));
        row["threads"] = static_cast<long long>(threads);
        row["samples"] = static_cast<long long>(c.samples);
        nlohmann::json timings_json = nlohmann::json::object();
        const std::string label = fmt::format("n={} {} threads={}", n, dtype_name(dt), threads);

        const std::size_t need = op.memory_bytes ? op.memory_bytes(c) : 0;
        const std::size_t have = need ? available_memory_bytes() : 0;
        if (need && need > have) {
          row["check"] = std::string("SKIP");
          notes.push_back(fmt::format("{}: skipped, needs {} but {} available", label,
                                      format_bytes(static_cast<double>(need)),
                                      format_bytes(static_cast<double>(have))));
          ++skipped;
        } else {
          try {
            std::unique_ptr<CaseState> state = op.setup(c);
            std::vector<Timing> timings;
            const int calls = op.calls ? std::max(1, op.calls(c)) : 1;
            timings_json["calls_per_rep"] = calls;
            for (const auto& k : op.kernels) {
              timings.push_back(time_kernel(k, *state, o, calls, times));
              timings_json[k.name] = {{"median_s", timings.back().median},
                                      {"min_s", timings.back().min},
                                      {"max_s", timings.back().max},
                                      {"times_s", times}};
            }
            op.metrics(c, *state, timings, row);
            if (o.check) {
              omp_set_num_threads(threads);
              const CheckResult r = op.check(c, *state, row);
              row["check"] = std::string(r.ok ? "ok" : "FAIL");
              if (!r.ok) {
                ++failures;
                notes.push_back(fmt::format("{}: FAILED: {}", label, r.why));
              }
            } else {
              row["check"] = std::string("off");
            }
          } catch (const std::exception& e) {
            row["check"] = std::string("ERROR");
            notes.push_back(fmt::format("{}: ERROR: {}", label, e.what()));
            ++failures;
          }
        }
        print_row(cols, row);
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

  const int code = failures ? 1 : (skipped ? 2 : 0);
  for (const auto& note : notes) fmt::print("# {}\n", note);
  fmt::print("# result   : {} rows, {} failed, {} skipped -> exit {}\n", results.size(), failures,
             skipped, code);

  if (!o.json_path.empty()) {
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
      return 2;
    }
  }
  return code;
}

}  // namespace harsanyi::bench
