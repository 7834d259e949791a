// The study config: embedded defaults, TOML file, --set overrides, validation, and to_toml().
// This is the only file that includes toml++ (header-only mode).
#include "study_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "user_error.h"

namespace harsanyi {
namespace {

/// One key of the config: its name and the member it sets.
struct Field {
  const char* key;
  std::variant<std::string*, int*, std::int64_t*, std::uint64_t*, double*, std::vector<double>*,
               std::vector<int>*, std::vector<std::int64_t>*, std::vector<std::string>*>
      target;
};

/// One [section] and its keys, in the order to_toml() writes them.
struct Section {
  const char* name;
  std::vector<Field> fields;
};

/// Every key of `c`, pointing into `c`. Adding a member to StudyConfig means adding it here.
std::vector<Section> sections_of(StudyConfig& c) {
  return {
      {"data",
       {{"format", &c.data.format},
        {"train", &c.data.train},
        {"test", &c.data.test},
        {"train_limit", &c.data.train_limit},
        {"test_limit", &c.data.test_limit},
        {"label_noise", &c.data.label_noise},
        {"normalize", &c.data.normalize},
        {"label_column", &c.data.label_column}}},
      {"model", {{"arch", &c.model.arch}, {"checkpoints", &c.model.checkpoints}}},
      {"train",
       {{"epochs", &c.train.epochs},
        {"batch", &c.train.batch},
        {"optimizer", &c.train.optimizer},
        {"lr", &c.train.lr},
        {"momentum", &c.train.momentum},
        {"weight_decay", &c.train.weight_decay},
        {"seed", &c.train.seed},
        {"threads", &c.train.threads}}},
      {"players",
       {{"kind", &c.players.kind},
        {"grid", &c.players.grid},
        {"cells", &c.players.cells},
        {"background", &c.players.background},
        {"features", &c.players.features}}},
      {"baseline", {{"kind", &c.baseline.kind}, {"value", &c.baseline.value}}},
      {"samples",
       {{"train", &c.samples.train},
        {"test", &c.samples.test},
        {"seed", &c.samples.seed},
        {"train_indices", &c.samples.train_indices},
        {"test_indices", &c.samples.test_indices}}},
      {"interactions",
       {{"output", &c.interactions.output},
        {"label", &c.interactions.label},
        {"mode", &c.interactions.mode},
        {"solver", &c.interactions.solver},
        {"iters", &c.interactions.iters},
        {"lr", &c.interactions.lr},
        {"momentum", &c.interactions.momentum},
        {"qthres", &c.interactions.qthres},
        {"tol", &c.interactions.tol},
        {"tau_rel", &c.interactions.tau_rel},
        {"store", &c.interactions.store}}},
      {"output", {{"path", &c.output.path}}},
      {"runtime",
       {{"device", &c.runtime.device},
        {"solver_device", &c.runtime.solver_device},
        {"threads", &c.runtime.threads},
        {"forward_batch", &c.runtime.forward_batch}}},
  };
}

std::string known_keys(const Section& section) {
  std::string out;
  for (const Field& f : section.fields) out += (out.empty() ? "" : ", ") + std::string(f.key);
  return out;
}

std::string known_sections(const std::vector<Section>& sections) {
  std::string out;
  for (const Section& s : sections) out += (out.empty() ? "[" : ", [") + std::string(s.name) + "]";
  return out;
}

/// Where a value came from, as a message prefix: "study.toml:4:9: " or "--set a.b=c: ".
std::string where(const std::string& origin, const toml::source_region& region) {
  if (region.begin.line == 0) return origin + ": ";
  return fmt::format("{}:{}:{}: ", origin, region.begin.line, region.begin.column);
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

// Conversions of one TOML value to a member type; false when the type is wrong.
bool convert(const toml::node& node, std::string& out) {
  if (!node.is_string()) return false;
  out = node.as_string()->get();
  return true;
}
bool convert(const toml::node& node, std::int64_t& out) {
  if (!node.is_integer()) return false;
  out = node.as_integer()->get();
  return true;
}
bool convert(const toml::node& node, int& out) {
  std::int64_t v = 0;
  if (!convert(node, v) || v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max()) {
    return false;
  }
  out = static_cast<int>(v);
  return true;
}
bool convert(const toml::node& node, std::uint64_t& out) {
  std::int64_t v = 0;
  if (!convert(node, v) || v < 0) return false;
  out = static_cast<std::uint64_t>(v);
  return true;
}
bool convert(const toml::node& node, double& out) {
  if (node.is_floating_point()) {
    out = node.as_floating_point()->get();
    return true;
  }
  if (node.is_integer()) {
    out = static_cast<double>(node.as_integer()->get());
    return true;
  }
  return false;
}
template <typename T>
bool convert(const toml::node& node, std::vector<T>& out) {
  if (!node.is_array()) return false;
  std::vector<T> values;
  for (const toml::node& element : *node.as_array()) {
    T value{};
    if (!convert(element, value)) return false;
    values.push_back(std::move(value));
  }
  out = std::move(values);
  return true;
}

template <typename T>
const char* expected_type() {
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, int>) return "an integer (32-bit)";
  if constexpr (std::is_same_v<T, std::int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, std::uint64_t>) return "a non-negative integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, std::vector<double>>)
    return "an array of numbers, e.g. [0.5, 0.25]";
  if constexpr (std::is_same_v<T, std::vector<int>>) return "an array of integers, e.g. [0, 4]";
  if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
    return "an array of integers, e.g. [0, 4]";
  }
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return "an array of strings, e.g. [\"values\"]";
  }
  return "?";
}

/// Sets `field` from `node`; `raw` (for --set) is the text to use for a string key when the
/// value is not a TOML string (so --set output.path=2024 gives the path "2024").
void assign(const Field& field, const std::string& section, const toml::node& node,
            const std::string& prefix, const std::string* raw) {
  std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        T value{};
        if (convert(node, value)) {
          *target = std::move(value);
          return;
        }
        if constexpr (std::is_same_v<T, std::string>) {
          if (raw != nullptr) {
            *target = *raw;
            return;
          }
        }
        std::string detail = type_name(node);
        if (node.is_integer() && (std::is_same_v<T, int> || std::is_same_v<T, std::uint64_t>)) {
          detail = fmt::format("{}", node.as_integer()->get());
        }
        if (node.is_array()) detail = "an array with an element of another type";
        throw UserError(fmt::format("{}{}.{} must be {}, got {}", prefix, section, field.key,
                                    expected_type<T>(), detail));
      },
      field.target);
}

/// Finds section.key; throws naming what is unknown and listing what is known.
const Field& find_field(const std::vector<Section>& sections, const std::string& section,
                        const std::string& key, const std::string& prefix) {
  const auto s = std::find_if(sections.begin(), sections.end(),
                              [&](const Section& x) { return section == x.name; });
  if (s == sections.end()) {
    throw UserError(fmt::format("{}unknown section [{}]; the sections are {}", prefix, section,
                                known_sections(sections)));
  }
  const auto f = std::find_if(s->fields.begin(), s->fields.end(),
                              [&](const Field& x) { return key == x.key; });
  if (f == s->fields.end()) {
    throw UserError(fmt::format("{}unknown key '{}' in [{}]; the keys of [{}] are {}", prefix, key,
                                section, section, known_keys(*s)));
  }
  return *f;
}

void apply_table(const toml::table& root, const std::string& origin,
                 std::vector<Section>& sections) {
  for (auto&& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const std::string prefix = where(origin, section_key.source());
    if (!section_node.is_table()) {
      throw UserError(fmt::format("{}'{}' is outside any section; keys belong to one of {}", prefix,
                                  section, known_sections(sections)));
    }
    // Validate the section name even when the table is empty.
    const auto s = std::find_if(sections.begin(), sections.end(),
                                [&](const Section& x) { return section == x.name; });
    if (s == sections.end()) {
      throw UserError(fmt::format("{}unknown section [{}]; the sections are {}", prefix, section,
                                  known_sections(sections)));
    }
    for (auto&& [key, node] : *section_node.as_table()) {
      const std::string key_prefix = where(origin, key.source());
      const Field& field = find_field(sections, section, std::string(key.str()), key_prefix);
      assign(field, section, node, where(origin, node.source()), nullptr);
    }
  }
}

std::string trim(std::string s) {
  const auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && blank(s.back())) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && blank(s[b])) ++b;
  return s.substr(b);
}

void apply_set(const std::string& set, std::vector<Section>& sections) {
  const std::string prefix = "--set " + set + ": ";
  const std::size_t eq = set.find('=');
  const std::string name = trim(set.substr(0, eq));
  const std::size_t dot = name.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == name.size() ||
      name.find('.', dot + 1) != std::string::npos) {
    throw UserError(
        fmt::format("{}expected section.key=value, e.g. --set train.epochs=10", prefix));
  }
  const std::string section = name.substr(0, dot), key = name.substr(dot + 1);
  const Field& field = find_field(sections, section, key, prefix);
  const std::string raw = trim(set.substr(eq + 1));
  // The value is read as a TOML value ("key = <value>"); text that is not one is a string.
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + raw + "\n");
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert("value", raw);
  }
  const toml::node* node = parsed.get("value");
  if (node == nullptr || parsed.size() != 1) {
    parsed = toml::table{};
    parsed.insert("value", raw);
    node = parsed.get("value");
  }
  assign(field, section, *node, prefix, &raw);
}

// ---- validation --------------------------------------------------------------------------

[[noreturn]] void invalid(const std::string& key, const std::string& shown,
                          const std::string& expected) {
  throw UserError(fmt::format("{} = {} is not valid: {}", key, shown, expected));
}

void check_choice(const std::string& key, const std::string& value,
                  std::initializer_list<const char*> choices) {
  for (const char* c : choices) {
    if (value == c) return;
  }
  std::string list;
  std::size_t i = 0;
  for (const char* c : choices) {
    list += (i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", ")) + std::string(c);
    ++i;
  }
  invalid(key, "\"" + value + "\"", "expected " + list);
}

void check_positive(const std::string& key, double value) {
  if (!(value > 0.0) || !std::isfinite(value))
    invalid(key, fmt::format("{}", value), "must be > 0");
}

void check_non_negative(const std::string& key, double value) {
  if (!(value >= 0.0) || !std::isfinite(value)) {
    invalid(key, fmt::format("{}", value), "must be >= 0");
  }
}

void validate(const StudyConfig& c) {
  check_choice("data.format", c.data.format, {"idx", "cifar10", "csv"});
  if (c.data.train.empty()) invalid("data.train", "\"\"", "a training dataset path is needed");
  check_non_negative("data.train_limit", static_cast<double>(c.data.train_limit));
  check_non_negative("data.test_limit", static_cast<double>(c.data.test_limit));
  if (!(c.data.label_noise >= 0.0 && c.data.label_noise <= 1.0)) {
    invalid("data.label_noise", fmt::format("{}", c.data.label_noise), "must be in [0, 1]");
  }
  if (!c.data.normalize.empty()) {
    if (c.data.normalize.size() != 2) {
      invalid("data.normalize", fmt::format("an array of {} numbers", c.data.normalize.size()),
              "expected [] or [mean, std]");
    }
    if (!std::isfinite(c.data.normalize[0]) || !(c.data.normalize[1] > 0.0) ||
        !std::isfinite(c.data.normalize[1])) {
      invalid("data.normalize", fmt::format("[{}, {}]", c.data.normalize[0], c.data.normalize[1]),
              "the mean must be finite and the std > 0");
    }
  }

  check_choice("model.arch", c.model.arch, {"mlp", "lenet", "vgg11s", "torchscript"});
  if (c.model.arch == "torchscript" && c.model.checkpoints.empty()) {
    invalid("model.checkpoints", "\"\"",
            "model.arch = \"torchscript\" needs a glob of per-epoch TorchScript files");
  }

  check_non_negative("train.epochs", c.train.epochs);
  check_positive("train.batch", static_cast<double>(c.train.batch));
  check_choice("train.optimizer", c.train.optimizer, {"sgd", "adam"});
  check_positive("train.lr", c.train.lr);
  check_non_negative("train.momentum", c.train.momentum);
  check_non_negative("train.weight_decay", c.train.weight_decay);

  check_choice("players.kind", c.players.kind, {"grid", "features"});
  if (c.players.grid.size() != 2 || c.players.grid[0] < 1 || c.players.grid[1] < 1) {
    std::string shown = "[";
    for (std::size_t i = 0; i < c.players.grid.size(); ++i) {
      shown += (i > 0 ? ", " : "") + std::to_string(c.players.grid[i]);
    }
    invalid("players.grid", shown + "]", "expected two integers [rows, cols], each >= 1");
  }
  const std::int64_t cell_count = static_cast<std::int64_t>(c.players.grid[0]) * c.players.grid[1];
  for (int cell : c.players.cells) {
    if (cell < 0 || cell >= cell_count) {
      invalid("players.cells", fmt::format("[..., {}, ...]", cell),
              fmt::format("a {}×{} grid has cells 0..{}", c.players.grid[0], c.players.grid[1],
                          cell_count - 1));
    }
  }
  check_choice("players.background", c.players.background, {"keep", "baseline"});

  check_choice("baseline.kind", c.baseline.kind, {"zero", "mean", "value"});
  if (!std::isfinite(c.baseline.value)) {
    invalid("baseline.value", fmt::format("{}", c.baseline.value), "must be finite");
  }

  check_non_negative("samples.train", c.samples.train);
  check_non_negative("samples.test", c.samples.test);
  for (std::int64_t i : c.samples.train_indices) {
    check_non_negative("samples.train_indices", static_cast<double>(i));
  }
  for (std::int64_t i : c.samples.test_indices) {
    check_non_negative("samples.test_indices", static_cast<double>(i));
  }

  check_choice("interactions.output", c.interactions.output,
               {"gt-log-odds", "gt-logit", "gt-log-odds-v0", "gt-logit-v0"});
  check_choice("interactions.label", c.interactions.label, {"ground-truth", "predicted"});
  check_choice("interactions.mode", c.interactions.mode, {"and", "and-or"});
  check_choice("interactions.solver", c.interactions.solver, {"sgd", "optimal"});
  check_positive("interactions.iters", c.interactions.iters);
  check_positive("interactions.lr", c.interactions.lr);
  check_non_negative("interactions.momentum", c.interactions.momentum);
  check_non_negative("interactions.qthres", c.interactions.qthres);
  check_positive("interactions.tol", c.interactions.tol);
  check_non_negative("interactions.tau_rel", c.interactions.tau_rel);
  for (const std::string& item : c.interactions.store) {
    check_choice("interactions.store", item, {"values", "interactions"});
  }

  if (c.output.path.empty()) invalid("output.path", "\"\"", "an output file path is needed");

  check_choice("runtime.device", c.runtime.device, {"auto", "cpu", "cuda"});
  check_choice("runtime.solver_device", c.runtime.solver_device, {"auto", "cpu", "cuda"});
  check_non_negative("runtime.threads", c.runtime.threads);
  check_non_negative("train.threads", c.train.threads);
  check_positive("runtime.forward_batch", static_cast<double>(c.runtime.forward_batch));
}

// ---- TOML output ------------------------------------------------------------------------

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{:.17g}", x);
  // A TOML float needs a '.' or an exponent (1 would read back as an integer).
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string value_text(const std::string& s) {
  return quoted(s);
}
std::string value_text(int v) {
  return std::to_string(v);
}
std::string value_text(std::int64_t v) {
  return std::to_string(v);
}
std::string value_text(std::uint64_t v) {
  return std::to_string(v);
}
std::string value_text(double v) {
  return number(v);
}
template <typename T>
std::string value_text(const std::vector<T>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    out += (i > 0 ? ", " : "") + value_text(values[i]);
  }
  return out + "]";
}

}  // namespace

std::string StudyConfig::to_toml() const {
  StudyConfig copy = *this;
  std::string out;
  for (const Section& section : sections_of(copy)) {
    out += (out.empty() ? "[" : "\n[") + std::string(section.name) + "]\n";
    for (const Field& field : section.fields) {
      out += field.key;
      out += " = ";
      out += std::visit([](const auto* target) { return value_text(*target); }, field.target);
      out += '\n';
    }
  }
  return out;
}

StudyConfig load_study_config(const std::string& path, const std::vector<std::string>& sets) {
  StudyConfig config;
  std::vector<Section> sections = sections_of(config);
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw UserError(
          fmt::format("cannot open the study config {}: {}", path, std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    toml::table root;
    try {
      root = toml::parse(text.str(), path);
    } catch (const toml::parse_error& e) {
      throw UserError(fmt::format("{}:{}:{}: TOML parse error: {}", path, e.source().begin.line,
                                  e.source().begin.column, e.description()));
    }
    apply_table(root, path, sections);
  }
  for (const std::string& set : sets) apply_set(set, sections);
  validate(config);
  return config;
}

}  // namespace harsanyi
