// Dataset readers (IDX, CIFAR-10 binary, CSV), normalisation, label noise, and load_split.
#include "dataset_readers.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string_view>
#include <system_error>

#include "study_config.h"
#include "user_error.h"

namespace harsanyi {
namespace {

namespace fs = std::filesystem;

bool is_regular_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

/// A file read through zlib: gzip-compressed or plain (zlib reads plain files transparently).
class ZFile {
 public:
  explicit ZFile(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) {
      const int err = errno;
      throw UserError(
          fmt::format("cannot open {}: {}", path, err != 0 ? std::strerror(err) : "out of memory"));
    }
    gzbuffer(file_, 1 << 17);
  }
  ZFile(const ZFile&) = delete;
  ZFile& operator=(const ZFile&) = delete;
  ~ZFile() {
    if (file_ != nullptr) gzclose(file_);
  }

  /// Reads up to `size` bytes; fewer only at the end of the data (or of a truncated gzip
  /// stream). Corrupt compressed data throws.
  std::size_t read(void* dst, std::size_t size) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < size) {
      const std::size_t chunk = std::min<std::size_t>(size - done, 1u << 30);
      const int got = gzread(file_, out + done, static_cast<unsigned>(chunk));
      if (got < 0) throw_zlib_error();
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum != Z_OK && errnum != Z_BUF_ERROR) throw_zlib_error();
    return done;
  }

  /// True when the file is not gzip-compressed.
  bool plain() { return gzdirect(file_) != 0; }

 private:
  [[noreturn]] void throw_zlib_error() {
    int errnum = Z_OK;
    const char* message = gzerror(file_, &errnum);
    throw UserError(fmt::format("{}: damaged compressed data ({}); download the file again", path_,
                                message != nullptr ? message : "zlib error"));
  }

  std::string path_;
  gzFile file_ = nullptr;
};

/// Whole file content (gzip or plain).
std::string read_all(const std::string& path) {
  ZFile file(path);
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const std::size_t got = file.read(buffer, sizeof buffer);
    text.append(buffer, got);
    if (got < sizeof buffer) break;
  }
  return text;
}

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

/// `<base>` if it exists, else `<base>.gz`; otherwise a UserError naming both.
std::string find_plain_or_gz(const std::string& base, const char* what, const std::string& prefix) {
  if (is_regular_file(base)) return base;
  if (is_regular_file(base + ".gz")) return base + ".gz";
  throw UserError(fmt::format(
      "IDX {} file not found: tried {} and {}; data.train / data.test of an idx dataset is "
      "the prefix before -images-idx3-ubyte (got '{}')",
      what, base, base + ".gz", prefix));
}

/// Reads exactly `size` bytes or throws "truncated".
void read_exact(ZFile& file, const std::string& path, void* dst, std::size_t size,
                std::uint64_t offset, const std::string& expected_what) {
  const std::size_t got = file.read(dst, size);
  if (got != size) {
    throw UserError(
        fmt::format("{}: truncated file: expected {} bytes ({}), got {}; download the file again",
                    path, offset + size, expected_what, offset + got));
  }
}

struct IdxHeader {
  std::vector<std::uint32_t> dims;
};

IdxHeader read_idx_header(ZFile& file, const std::string& path, std::uint32_t magic_expected,
                          int ndims, const char* what) {
  unsigned char magic_bytes[4];
  read_exact(file, path, magic_bytes, 4, 0, "the IDX magic number");
  const std::uint32_t magic = big_endian_u32(magic_bytes);
  if (magic != magic_expected) {
    throw UserError(fmt::format(
        "{}: wrong magic number 0x{:08x} (expected 0x{:08x} for an IDX file of {}); check that "
        "data.train / data.test name an IDX {} file (data.format = \"idx\")",
        path, magic, magic_expected, what, what));
  }
  IdxHeader header;
  std::vector<unsigned char> dims(static_cast<std::size_t>(4 * ndims));
  read_exact(file, path, dims.data(), dims.size(), 4, "the IDX header");
  for (int d = 0; d < ndims; ++d) header.dims.push_back(big_endian_u32(&dims[4 * d]));
  return header;
}

/// Throws when a plain (uncompressed) file is shorter than its header says.
void check_plain_size(ZFile& file, const std::string& path, std::uint64_t expected,
                      const std::string& expected_what) {
  if (!file.plain()) return;
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  if (!ec && size < expected) {
    throw UserError(
        fmt::format("{}: truncated file: expected {} bytes ({}), got {}; download the file again",
                    path, expected, expected_what, size));
  }
}

std::int32_t classes_of(const std::vector<std::int32_t>& labels) {
  std::int32_t max_label = -1;
  for (std::int32_t l : labels) max_label = std::max(max_label, l);
  return max_label + 1;
}

/// Trims blanks (space, tab, CR) on both sides.
std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

/// Splits one CSV line into trimmed fields; double-quoted fields may hold commas and "" for a
/// quote. Returns false on an unterminated quote.
bool split_csv_line(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::size_t pos = 0;
  for (;;) {
    std::string field;
    // Leading blanks before a possible quote.
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (pos < line.size() && line[pos] == '"') {
      ++pos;
      bool closed = false;
      while (pos < line.size()) {
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field += '"';
            pos += 2;
          } else {
            ++pos;
            closed = true;
            break;
          }
        } else {
          field += line[pos++];
        }
      }
      if (!closed) return false;
      const std::size_t comma = line.find(',', pos);
      const std::size_t end = comma == std::string_view::npos ? line.size() : comma;
      // Text between the closing quote and the comma is kept (it makes a bad number visible).
      field += std::string(trim(line.substr(pos, end - pos)));
      fields.push_back(std::move(field));
      if (comma == std::string_view::npos) return true;
      pos = comma + 1;
    } else {
      const std::size_t comma = line.find(',', pos);
      const std::size_t end = comma == std::string_view::npos ? line.size() : comma;
      fields.emplace_back(trim(line.substr(pos, end - pos)));
      if (comma == std::string_view::npos) return true;
      pos = comma + 1;
    }
  }
}

/// Parses a whole field as a finite double ("+1.5", "-2e3"); false otherwise.
bool parse_double(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(value);
}

/// A non-negative integer label ("3", "3.0") below 2^31 - 1.
bool parse_integer_label(std::string_view text, std::int32_t& label) {
  double value = 0.0;
  if (!parse_double(text, value)) return false;
  if (value < 0.0 || value != std::floor(value) ||
      value >= static_cast<double>(std::numeric_limits<std::int32_t>::max())) {
    return false;
  }
  label = static_cast<std::int32_t>(value);
  return true;
}

std::string join_names(const std::vector<std::string>& names, std::size_t max_shown = 20) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < max_shown; ++i) {
    if (i > 0) out += ", ";
    out += "'" + names[i] + "'";
  }
  if (names.size() > max_shown) out += fmt::format(", ... ({} in all)", names.size());
  return out;
}

}  // namespace

std::uint64_t bounded_random(std::mt19937_64& rng, std::uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("bounded_random: bound must be at least 1");
  // 2^64 mod bound, computed in 64 bits: (2^64 - bound) mod bound.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

Dataset read_idx(const std::string& prefix, std::int64_t limit) {
  if (limit < 0) throw UserError(fmt::format("the sample limit must be >= 0 (got {})", limit));
  const std::string images_path = find_plain_or_gz(prefix + "-images-idx3-ubyte", "images", prefix);
  const std::string labels_path = find_plain_or_gz(prefix + "-labels-idx1-ubyte", "labels", prefix);

  ZFile images(images_path);
  const IdxHeader ih = read_idx_header(images, images_path, 0x00000803u, 3, "images");
  ZFile labels(labels_path);
  const IdxHeader lh = read_idx_header(labels, labels_path, 0x00000801u, 1, "labels");

  const std::uint64_t count = ih.dims[0], rows = ih.dims[1], cols = ih.dims[2];
  if (rows == 0 || cols == 0) {
    throw UserError(fmt::format("{}: images of {}×{} pixels; the IDX header is damaged",
                                images_path, rows, cols));
  }
  if (lh.dims[0] != count) {
    throw UserError(fmt::format(
        "{} holds {} images but {} holds {} labels: the image and label counts differ; use the "
        "images and labels of the same split",
        images_path, count, labels_path, lh.dims[0]));
  }
  const std::uint64_t pixels = rows * cols;
  const std::string image_layout =
      fmt::format("a header of 16 and {} images of {}×{}", count, rows, cols);
  check_plain_size(images, images_path, 16 + count * pixels, image_layout);
  check_plain_size(labels, labels_path, 8 + count,
                   fmt::format("a header of 8 and {} labels", count));

  const std::uint64_t n =
      limit > 0 ? std::min<std::uint64_t>(count, static_cast<std::uint64_t>(limit)) : count;
  Dataset out;
  out.source = prefix;
  out.shape = {1, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
  std::vector<unsigned char> bytes(n * pixels);
  read_exact(images, images_path, bytes.data(), bytes.size(), 16,
             n == count
                 ? image_layout
                 : fmt::format("a header of 16 and the first {} images of {}×{}", n, rows, cols));
  out.data.resize(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out.data[i] = static_cast<float>(bytes[i]) / 255.0f;
  }
  bytes.resize(n);
  read_exact(labels, labels_path, bytes.data(), n, 8,
             fmt::format("a header of 8 and {} labels", n));
  out.labels.assign(bytes.begin(), bytes.end());
  out.num_classes = classes_of(out.labels);
  return out;
}

Dataset read_cifar10(const std::string& path, const std::string& split, std::int64_t limit) {
  if (limit < 0) throw UserError(fmt::format("the sample limit must be >= 0 (got {})", limit));
  constexpr std::uint64_t kRecord = 3073, kPixels = 3072;
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (split == "test") {
      const std::string file = (fs::path(path) / "test_batch.bin").string();
      if (!is_regular_file(file)) {
        throw UserError(fmt::format(
            "CIFAR-10 test batch not found: tried {}; set data.test to the cifar-10-batches-bin "
            "directory or to a .bin file",
            file));
      }
      files.push_back(file);
    } else {
      std::string tried;
      for (int b = 1; b <= 5; ++b) {
        const std::string file = (fs::path(path) / fmt::format("data_batch_{}.bin", b)).string();
        tried += (b > 1 ? ", " : "") + file;
        if (is_regular_file(file)) files.push_back(file);
      }
      if (files.empty()) {
        throw UserError(fmt::format(
            "no CIFAR-10 training batch found: tried {}; set data.train to the "
            "cifar-10-batches-bin directory (from cifar-10-binary.tar.gz) or to a .bin file",
            tried));
      }
    }
  } else if (is_regular_file(path)) {
    files.push_back(path);
  } else {
    throw UserError(fmt::format(
        "CIFAR-10 data not found: {} is neither a file nor a directory; set data.{} to the "
        "cifar-10-batches-bin directory or to a .bin file",
        path, split));
  }

  Dataset out;
  out.source = path;
  out.shape = {3, 32, 32};
  const std::uint64_t wanted =
      limit > 0 ? static_cast<std::uint64_t>(limit) : std::numeric_limits<std::uint64_t>::max();
  std::uint64_t total = 0;
  std::vector<unsigned char> record(kRecord);
  for (const std::string& file : files) {
    if (total >= wanted) break;
    const std::uint64_t size = fs::file_size(file, ec);
    if (ec) throw UserError(fmt::format("cannot read the size of {}: {}", file, ec.message()));
    if (size % kRecord != 0 || size == 0) {
      throw UserError(fmt::format(
          "{}: truncated file: {} bytes is not a whole number of 3073-byte CIFAR-10 records "
          "({} records and {} bytes left over); download the file again",
          file, size, size / kRecord, size % kRecord));
    }
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) {
      throw UserError(fmt::format("cannot open {}: {}", file, std::strerror(errno)));
    }
    const std::uint64_t records = std::min(size / kRecord, wanted - total);
    out.data.reserve(out.data.size() + records * kPixels);
    for (std::uint64_t r = 0; r < records; ++r) {
      if (std::fread(record.data(), 1, kRecord, f) != kRecord) {
        std::fclose(f);
        throw UserError(fmt::format("{}: truncated file: record {} could not be read", file, r));
      }
      if (record[0] > 9) {
        std::fclose(f);
        throw UserError(fmt::format(
            "{}: label out of range: record {} has label {} (CIFAR-10 labels are 0..9); is this "
            "a CIFAR-100 file (2 label bytes per record)?",
            file, r, record[0]));
      }
      out.labels.push_back(record[0]);
      for (std::uint64_t p = 0; p < kPixels; ++p) {
        out.data.push_back(static_cast<float>(record[1 + p]) / 255.0f);
      }
    }
    std::fclose(f);
    total += records;
  }
  out.num_classes = classes_of(out.labels);
  return out;
}

Dataset read_csv(const std::string& path, const std::string& label_column, std::int64_t limit,
                 CsvRows rows, const std::vector<std::string>& classes) {
  if (limit < 0) throw UserError(fmt::format("the sample limit must be >= 0 (got {})", limit));
  if (!is_regular_file(path)) {
    throw UserError(
        fmt::format("CSV file not found: {}; set data.train / data.test to a .csv "
                    "or .csv.gz file",
                    path));
  }
  const std::string text = read_all(path);
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 byte order mark

  std::vector<std::string> header, fields;
  std::vector<float> values;              // all rows, features only
  std::vector<std::string> label_texts;   // all rows
  std::vector<std::int64_t> label_lines;  // line of each row, for messages
  std::size_t label_index = 0, features = 0;
  std::int64_t line_number = 0;
  while (!rest.empty()) {
    const std::size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    ++line_number;
    if (trim(line).empty()) continue;
    if (!split_csv_line(line, fields)) {
      throw UserError(fmt::format("{}:{}: unterminated quoted field; close the double quote", path,
                                  line_number));
    }
    if (header.empty()) {
      header = fields;
      std::set<std::string> seen;
      for (std::size_t c = 0; c < header.size(); ++c) {
        if (!seen.insert(header[c]).second) {
          throw UserError(
              fmt::format("{}:{}: column {} repeats the column name '{}'; column "
                          "names must be unique",
                          path, line_number, c + 1, header[c]));
        }
      }
      if (header.size() < 2) {
        throw UserError(
            fmt::format("{}:{}: the header has {} column(s); a CSV table needs at "
                        "least one feature column and a label column",
                        path, line_number, header.size()));
      }
      if (label_column.empty()) {
        label_index = header.size() - 1;
      } else {
        const auto it = std::find(header.begin(), header.end(), label_column);
        if (it == header.end()) {
          throw UserError(
              fmt::format("{}: no column named '{}' (data.label_column); the "
                          "columns are {}",
                          path, label_column, join_names(header)));
        }
        label_index = static_cast<std::size_t>(it - header.begin());
      }
      features = header.size() - 1;
      continue;
    }
    if (fields.size() != header.size()) {
      throw UserError(
          fmt::format("{}:{}: ragged row: {} columns, the header has {}; every row "
                      "needs one value per column",
                      path, line_number, fields.size(), header.size()));
    }
    for (std::size_t c = 0; c < fields.size(); ++c) {
      if (c == label_index) continue;
      double value = 0.0;
      if (!parse_double(fields[c], value)) {
        throw UserError(
            fmt::format("{}:{}: column {} ('{}'): '{}' is not a finite number; "
                        "every column but the label must be numeric",
                        path, line_number, c + 1, header[c], fields[c]));
      }
      values.push_back(static_cast<float>(value));
    }
    label_texts.push_back(fields[label_index]);
    label_lines.push_back(line_number);
  }
  if (header.empty()) {
    throw UserError(fmt::format("{}: empty file; a CSV table needs a header row", path));
  }

  // Labels of every row of the file (so that both parts of a split file number classes alike).
  const std::size_t all_rows = label_texts.size();
  std::vector<std::int32_t> all_labels(all_rows);
  std::vector<std::string> class_names = classes;
  bool integer_labels = class_names.empty();
  for (std::size_t i = 0; integer_labels && i < all_rows; ++i) {
    integer_labels = parse_integer_label(label_texts[i], all_labels[i]);
  }
  if (!integer_labels) {
    if (class_names.empty()) {
      // Not all labels are non-negative integers: number the distinct texts in sorted order.
      class_names = label_texts;
      std::sort(class_names.begin(), class_names.end());
      class_names.erase(std::unique(class_names.begin(), class_names.end()), class_names.end());
    }
    std::map<std::string, std::int32_t> index;
    for (std::size_t k = 0; k < class_names.size(); ++k) {
      index[class_names[k]] = static_cast<std::int32_t>(k);
    }
    for (std::size_t i = 0; i < all_rows; ++i) {
      const auto it = index.find(label_texts[i]);
      if (it == index.end()) {
        throw UserError(
            fmt::format("{}:{}: label '{}' is not one of the classes of the "
                        "training file ({})",
                        path, label_lines[i], label_texts[i], join_names(class_names)));
      }
      all_labels[i] = it->second;
    }
  }

  Dataset out;
  out.source = path;
  out.shape = {static_cast<std::int64_t>(features)};
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c != label_index) out.feature_names.push_back(header[c]);
  }
  if (!integer_labels) out.class_names = class_names;
  const std::uint64_t wanted =
      limit > 0 ? static_cast<std::uint64_t>(limit) : std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < all_rows && out.labels.size() < wanted; ++i) {
    // A file split 4:1: data row i (from 0, blank lines not counted) is a test row when
    // i % 5 == 4.
    const bool test_row = i % 5 == 4;
    if ((rows == CsvRows::kSplitTrain && test_row) || (rows == CsvRows::kSplitTest && !test_row)) {
      continue;
    }
    out.labels.push_back(all_labels[i]);
    out.data.insert(out.data.end(), values.begin() + static_cast<std::ptrdiff_t>(i * features),
                    values.begin() + static_cast<std::ptrdiff_t>((i + 1) * features));
  }
  out.num_classes =
      integer_labels ? classes_of(out.labels) : static_cast<std::int32_t>(class_names.size());
  return out;
}

void normalize_dataset(Dataset& data, double mean, double std) {
  if (!(std > 0.0) || !std::isfinite(std) || !std::isfinite(mean)) {
    throw UserError(
        fmt::format("data.normalize = [{}, {}]: the mean must be finite and the "
                    "standard deviation positive",
                    mean, std));
  }
  for (float& x : data.data) x = static_cast<float>((static_cast<double>(x) - mean) / std);
}

Dataset load_split(const StudyConfig& config, const std::string& split) {
  if (split != "train" && split != "test") {
    throw std::invalid_argument("load_split: split must be \"train\" or \"test\", got " + split);
  }
  const StudyConfig::Data& d = config.data;
  const bool train = split == "train";
  const std::int64_t limit = train ? d.train_limit : d.test_limit;
  Dataset out;
  if (d.format == "idx") {
    const std::string& prefix = train ? d.train : d.test;
    if (prefix.empty()) {
      throw UserError(
          fmt::format("data.{} is empty: set it to the prefix of the IDX {} files "
                      "(e.g. /usr/share/datasets/fashion-mnist/{})",
                      split, split, train ? "train" : "t10k"));
    }
    out = read_idx(prefix, limit);
  } else if (d.format == "cifar10") {
    std::string path = train ? d.train : d.test;
    std::error_code ec;
    if (!train && path.empty() && fs::is_directory(d.train, ec)) path = d.train;
    if (path.empty()) {
      throw UserError(
          fmt::format("data.{} is empty: set it to the cifar-10-batches-bin "
                      "directory or to a .bin file",
                      split));
    }
    out = read_cifar10(path, split, limit);
  } else if (d.format == "csv") {
    if (d.train.empty()) throw UserError("data.train is empty: set it to a .csv file");
    if (d.test.empty()) {
      out = read_csv(d.train, d.label_column, limit,
                     train ? CsvRows::kSplitTrain : CsvRows::kSplitTest);
    } else if (train) {
      out = read_csv(d.train, d.label_column, limit, CsvRows::kAll);
    } else {
      // The test file's label texts are numbered as the training file's.
      const std::vector<std::string> classes =
          read_csv(d.train, d.label_column, 0, CsvRows::kAll).class_names;
      out = read_csv(d.test, d.label_column, limit, CsvRows::kAll, classes);
      if (classes.empty() && !out.class_names.empty()) {
        throw UserError(
            fmt::format("{}: the labels are not all non-negative integers, but "
                        "those of the training file {} are; use the same labels",
                        d.test, d.train));
      }
    }
  } else {
    throw UserError(
        fmt::format("data.format = \"{}\" is not valid: expected idx, cifar10 or csv", d.format));
  }
  if (!d.normalize.empty()) {
    if (d.normalize.size() != 2) {
      throw UserError("data.normalize must be [] or [mean, std]");
    }
    normalize_dataset(out, d.normalize[0], d.normalize[1]);
  }
  return out;
}

std::vector<std::int32_t> noisy_labels(const Dataset& train, double fraction, std::uint64_t seed) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    throw UserError(fmt::format("data.label_noise = {} must be in [0, 1]", fraction));
  }
  std::vector<std::int32_t> labels = train.labels;
  const std::uint64_t count = labels.size();
  const auto changed = static_cast<std::uint64_t>(std::llround(fraction * count));
  if (changed == 0) return labels;
  if (train.num_classes < 2) {
    throw UserError(fmt::format("data.label_noise = {} needs at least 2 classes ({} has {})",
                                fraction, train.source, train.num_classes));
  }
  // Draw order (fixed, so the result is the same everywhere): first a partial Fisher-Yates
  // shuffle of 0..count-1 whose first `changed` entries are the samples to relabel (step i
  // swaps entry i with entry i + bounded_random(count - i)); then, for those samples in that
  // order, label -> (label + 1 + bounded_random(num_classes - 1)) mod num_classes, which is
  // always a different class.
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> order(count);
  std::iota(order.begin(), order.end(), std::uint64_t{0});
  for (std::uint64_t i = 0; i < changed; ++i) {
    std::swap(order[i], order[i + bounded_random(rng, count - i)]);
  }
  const auto classes = static_cast<std::uint64_t>(train.num_classes);
  for (std::uint64_t i = 0; i < changed; ++i) {
    std::int32_t& label = labels[order[i]];
    label = static_cast<std::int32_t>(
        (static_cast<std::uint64_t>(label) + 1 + bounded_random(rng, classes - 1)) % classes);
  }
  return labels;
}

}  // namespace harsanyi
