// The study file: extendible per-epoch datasets, one whole epoch at a time (DESIGN §5).
#include "study_writer.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "harsanyi_config.h"
#include "output_file.h"
#include "user_error.h"

namespace harsanyi {
namespace fs = std::filesystem;

namespace {

const char* const kEpochScalars[] = {"/epochs/train_loss", "/epochs/test_loss",
                                     "/epochs/train_acc", "/epochs/test_acc"};
const char* const kTimings[] = {"/timing/eval", "/timing/forward", "/timing/solver",
                                "/timing/write"};

}  // namespace

StudyWriter::StudyWriter(std::string out, StudyShape shape, h5::File file)
    : out_(std::move(out)),
      part_(out_ + ".part"),
      shape_(shape),
      file_(std::make_unique<h5::File>(std::move(file))) {}

bool has_both_splits(const std::vector<std::uint8_t>& split) {
  return std::count(split.begin(), split.end(), 0) > 0 &&
         std::count(split.begin(), split.end(), 1) > 0;
}

bool StudyWriter::has_partial(const std::string& out) { return fs::exists(out + ".part"); }

std::vector<std::string> StudyWriter::per_epoch_datasets() const {
  std::vector<std::string> names = {"/epochs/epoch"};
  for (const char* s : kEpochScalars) names.emplace_back(s);
  for (const char* s : kTimings) names.emplace_back(s);
  for (const char* kind : {"and", "or"}) {
    if (std::string(kind) == "or" && !shape_.and_or) continue;
    for (const char* what : {"pos", "neg", "count"})
      names.push_back(fmt::format("/orders/{}_{}", kind, what));
  }
  names.emplace_back("/extraction/loss");
  names.emplace_back("/extraction/threshold");
  if (shape_.has_bound) names.emplace_back("/extraction/bound");
  if (shape_.store_values) names.emplace_back("/values");
  if (shape_.store_interactions) {
    names.emplace_back("/interactions/and");
    if (shape_.and_or) names.emplace_back("/interactions/or");
  }
  if (shape_.jaccard) names.emplace_back("/generalization/jaccard");
  return names;
}

std::unique_ptr<StudyWriter> StudyWriter::create(const std::string& out, bool force,
                                                 const StudyShape& requested,
                                                 const StudyHeader& header) {
  StudyShape shape = requested;
  shape.samples = static_cast<std::int64_t>(header.sample_index.size());
  shape.jaccard = has_both_splits(header.sample_split);
  if (header.sample_label.size() != header.sample_index.size() ||
      header.sample_split.size() != header.sample_index.size() ||
      (requested.samples != 0 && requested.samples != shape.samples))
    throw std::logic_error("StudyWriter: inconsistent sample count");
  OutputFile::check_target(out, force);
  const std::string part = out + ".part";
  if (fs::exists(part) && !force)
    throw UserError(fmt::format("{} exists: an interrupted study. Continue it with --resume, or "
                                "start over with --force",
                                part));
  h5::File file = [&] {
    try {
      return h5::File::create(part);
    } catch (const h5::H5Error& e) {
      throw UserError(e.what());
    }
  }();
  auto w = std::unique_ptr<StudyWriter>(new StudyWriter(out, shape, std::move(file)));
  h5::File& f = *w->file_;
  const hsize_t S = static_cast<hsize_t>(shape.samples), K = static_cast<hsize_t>(shape.n) + 1,
                L = hsize_t{1} << shape.n, C = static_cast<hsize_t>(shape.classes);

  f.write_strings("/players/name", header.player_names);
  f.create_dataset("/samples/index", h5::Dtype::I64, {S});
  f.create_dataset("/samples/label", h5::Dtype::I32, {S});
  f.create_dataset("/samples/split", h5::Dtype::U8, {S});
  f.write_rows("/samples/index", 0, S, header.sample_index.data());
  f.write_rows("/samples/label", 0, S, header.sample_label.data());
  f.write_rows("/samples/split", 0, S, header.sample_split.data());

  f.create_extendible("/epochs/epoch", h5::Dtype::I32, {0}, 64);
  for (const char* s : kEpochScalars) f.create_extendible(s, h5::Dtype::F64, {0}, 64);
  for (const char* s : kTimings) f.create_extendible(s, h5::Dtype::F64, {0}, 64);
  for (const char* kind : {"and", "or"}) {
    if (std::string(kind) == "or" && !shape.and_or) continue;
    f.create_extendible(fmt::format("/orders/{}_pos", kind), h5::Dtype::F64, {0, S, K}, 1);
    f.create_extendible(fmt::format("/orders/{}_neg", kind), h5::Dtype::F64, {0, S, K}, 1);
    f.create_extendible(fmt::format("/orders/{}_count", kind), h5::Dtype::I32, {0, S, K}, 1);
  }
  f.create_extendible("/extraction/loss", h5::Dtype::F64, {0, S}, 1);
  f.create_extendible("/extraction/threshold", h5::Dtype::F64, {0, S}, 1);
  if (shape.has_bound) f.create_extendible("/extraction/bound", h5::Dtype::F64, {0, S}, 1);
  if (shape.store_values) f.create_extendible("/values", h5::Dtype::F64, {0, S, L}, 1);
  if (shape.store_interactions) {
    f.create_extendible("/interactions/and", h5::Dtype::F64, {0, S, L}, 1);
    if (shape.and_or) f.create_extendible("/interactions/or", h5::Dtype::F64, {0, S, L}, 1);
  }
  if (shape.jaccard)
    f.create_extendible("/generalization/jaccard", h5::Dtype::F64, {0, C, K}, 1);

  f.set_attribute("schema", std::string("harsanyi/1"));
  f.set_attribute("kind", std::string("study"));
  f.set_attribute("tool_version", std::string(HARSANYI_VERSION));
  f.set_attribute("git_sha", std::string(HARSANYI_GIT_SHA));
  f.set_attribute("created_utc", utc_now());
  f.set_attribute("config", header.config);
  f.set_attribute("n_players", std::int64_t{shape.n});
  f.set_attribute("subset_index", std::string("bit i = player i"));
  f.set_attribute("mpi_ranks", std::int64_t{1});
  f.set_attribute("or_folding",
                  std::string(shape.and_or
                                  ? "folded: OR terms of order <= 1 added to AND, zero in OR"
                                  : "none (mode and)"));
  for (const auto& [k, v] : header.string_attributes) f.set_attribute(k, v);
  for (const auto& [k, v] : header.number_attributes) f.set_attribute(k, v);
  f.set_attribute("epochs_written", std::int64_t{0});
  f.flush();
  return w;
}

std::unique_ptr<StudyWriter> StudyWriter::resume(const std::string& out,
                                                 const StudyShape& requested,
                                                 const std::string& config,
                                                 const mpi::Communicator& comm) {
  const std::string part = out + ".part";
  if (!fs::exists(part))
    throw UserError(fmt::format("--resume: {} does not exist (no interrupted study to continue); "
                                "run without --resume",
                                part));
  h5::File file = [&] {
    try {
      return comm.distributed() ? h5::File::open_parallel(part, comm.comm())
                                : h5::File::open_write(part);
    } catch (const h5::H5Error& e) {
      throw UserError(fmt::format("{}; the interrupted study file is damaged: delete {} and run "
                                  "again with --resume (the analysis starts over; the "
                                  "checkpoints in {}.ckpt/ are kept, so training is not "
                                  "repeated)",
                                  e.what(), part, out));
    }
  }();
  auto w = std::unique_ptr<StudyWriter>(new StudyWriter(out, requested, std::move(file)));
  w->comm_ = comm;
  h5::File& f = *w->file_;
  StudyShape& shape = w->shape_;
  try {
    if (!f.has_attribute("kind") || f.string_attribute("kind") != "study" ||
        !f.has_attribute("epochs_written"))
      throw UserError(part + ": not an interrupted harsanyi study; start over with --force");
    if (f.string_attribute("config") != config)
      throw UserError(fmt::format(
          "--resume: {} was started with a different study config; resume with the same config "
          "(its text is the file's `config` attribute), or start over with --force",
          part));
    const int n = static_cast<int>(f.double_attribute("n_players"));
    const h5::DatasetInfo orders = f.info("/orders/and_pos");
    const std::vector<std::uint8_t> split = f.read_all<std::uint8_t>("/samples/split");
    if (shape.samples == 0) shape.samples = static_cast<std::int64_t>(split.size());
    shape.jaccard = has_both_splits(split);
    if (n != shape.n || orders.dims.size() != 3 ||
        orders.dims[1] != static_cast<hsize_t>(shape.samples) ||
        split.size() != static_cast<std::size_t>(shape.samples))
      throw UserError(part + ": players or samples differ from this run's; start over with --force");
    for (const std::string& name : w->per_epoch_datasets())
      if (!f.exists(name))
        throw UserError(part + ": dataset " + name + " is missing; start over with --force");
    const auto written = static_cast<std::size_t>(f.double_attribute("epochs_written"));
    const std::vector<std::int32_t> epochs = f.read_all<std::int32_t>("/epochs/epoch");
    if (epochs.size() < written)
      throw UserError(part + ": damaged (fewer epoch rows than written epochs); start over with "
                             "--force");
    w->written_.assign(epochs.begin(), epochs.begin() + static_cast<std::ptrdiff_t>(written));
    f.set_attribute("mpi_ranks", std::int64_t{comm.size()});
    w->cut_to_written();
  } catch (const h5::H5Error& e) {
    throw UserError(fmt::format("{}; the interrupted study file is damaged: delete {} and run "
                                "again with --resume (the checkpoints in {}.ckpt/ are kept)",
                                e.what(), part, out));
  }
  return w;
}

StudyHeader StudyWriter::stored_header() const {
  StudyHeader h;
  h.player_names = file_->read_strings("/players/name");
  h.sample_index = file_->read_all<std::int64_t>("/samples/index");
  h.sample_label = file_->read_all<std::int32_t>("/samples/label");
  h.sample_split = file_->read_all<std::uint8_t>("/samples/split");
  h.config = file_->string_attribute("config");
  return h;
}

void StudyWriter::cut_to_written() {
  for (const std::string& name : per_epoch_datasets()) file_->set_rows(name, written_.size());
  file_->flush();
}

void StudyWriter::begin_epoch() {
  if (epoch_open_) throw std::logic_error("StudyWriter: epoch already open");
  for (const std::string& name : per_epoch_datasets()) file_->set_rows(name, written_.size() + 1);
  epoch_open_ = true;
}

void StudyWriter::write_block(const EpochBlock& b) {
  if (!epoch_open_) throw std::logic_error("StudyWriter: no open epoch");
  const hsize_t row = written_.size(), s0 = static_cast<hsize_t>(b.sample0),
                cnt = static_cast<hsize_t>(b.count), K = static_cast<hsize_t>(shape_.n) + 1,
                L = hsize_t{1} << shape_.n;
  auto put = [&](const std::string& name, const auto& data, hsize_t width) {
    if (data.size() != cnt * width)
      throw std::logic_error(fmt::format("StudyWriter: {} has {} values, expected {}", name,
                                         data.size(), cnt * width));
    if (width == 1)
      file_->write_block(name, {row, s0}, {1, cnt}, data.data());
    else
      file_->write_block(name, {row, s0, 0}, {1, cnt, width}, data.data());
  };
  put("/orders/and_pos", b.and_pos, K);
  put("/orders/and_neg", b.and_neg, K);
  put("/orders/and_count", b.and_count, K);
  if (shape_.and_or) {
    put("/orders/or_pos", b.or_pos, K);
    put("/orders/or_neg", b.or_neg, K);
    put("/orders/or_count", b.or_count, K);
  }
  put("/extraction/loss", b.loss, 1);
  put("/extraction/threshold", b.threshold, 1);
  if (shape_.has_bound) put("/extraction/bound", b.bound, 1);
  if (shape_.store_values) put("/values", b.values, L);
  if (shape_.store_interactions) {
    put("/interactions/and", b.inter_and, L);
    if (shape_.and_or) put("/interactions/or", b.inter_or, L);
  }
}

void StudyWriter::end_epoch(const EpochSummary& s) {
  if (!epoch_open_) throw std::logic_error("StudyWriter: no open epoch");
  const hsize_t row = written_.size();
  // Rank 0 writes the epoch's row; the other ranks join the collective writes with nothing.
  const hsize_t one = comm_.root() ? 1 : 0;
  file_->write_rows("/epochs/epoch", row, one, &s.epoch);
  const double scalars[] = {s.train_loss, s.test_loss, s.train_acc, s.test_acc};
  for (int i = 0; i < 4; ++i) file_->write_rows(kEpochScalars[i], row, one, &scalars[i]);
  const double times[] = {s.t_eval, s.t_forward, s.t_solver, s.t_write};
  for (int i = 0; i < 4; ++i) file_->write_rows(kTimings[i], row, one, &times[i]);
  if (shape_.jaccard) {
    const hsize_t C = static_cast<hsize_t>(shape_.classes), K = static_cast<hsize_t>(shape_.n) + 1;
    if (s.jaccard.size() != C * K) throw std::logic_error("StudyWriter: jaccard size");
    file_->write_block("/generalization/jaccard", {row, 0, 0}, {one, C, K}, s.jaccard.data());
  }
  // The rows reach the disk before the counter that declares them written.
  file_->flush();
  file_->set_attribute("epochs_written", static_cast<std::int64_t>(row + 1));
  file_->flush();
  written_.push_back(s.epoch);
  epoch_open_ = false;
}

void StudyWriter::finish(double elapsed_seconds) {
  if (epoch_open_) throw std::logic_error("StudyWriter: epoch still open");
  file_->set_attribute("elapsed_s", elapsed_seconds);
  file_->set_attribute("complete", std::int64_t{1});
  file_->close();
  file_.reset();
  comm_.barrier();  // every rank has closed the file
  if (comm_.root()) {
    std::error_code ec;
    fs::rename(part_, out_, ec);
    if (ec)
      throw UserError(fmt::format("cannot rename {} to {}: {}", part_, out_, ec.message()));
  }
  comm_.barrier();
}

void StudyWriter::set_layout(int epoch_groups, int subset_ranks) {
  file_->set_attribute("epoch_groups", std::int64_t{epoch_groups});
  file_->set_attribute("subset_ranks", std::int64_t{subset_ranks});
}

void StudyWriter::close() {
  if (!file_) return;
  file_->close();
  file_.reset();
}

StudyWriter::~StudyWriter() {
  if (file_ && file_->parallel()) file_->abandon();
}

}  // namespace harsanyi
