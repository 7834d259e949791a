// The study file: layout, whole-epoch writes, and resume after an epoch left half-written.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "h5_wrappers.h"
#include "study_writer.h"
#include "user_error.h"

namespace harsanyi {
namespace {
namespace fs = std::filesystem;

StudyShape small_shape() {
  StudyShape s;
  s.n = 3;
  s.samples = 4;
  s.classes = 2;
  s.and_or = true;
  s.has_bound = true;
  s.store_values = true;
  s.store_interactions = true;
  s.jaccard = true;
  return s;
}

StudyHeader small_header() {
  StudyHeader h;
  h.player_names = {"cell 0", "cell 1", "cell 2"};
  h.sample_index = {5, 9, 1, 7};
  h.sample_label = {0, 1, 0, 1};
  h.sample_split = {0, 0, 1, 1};
  h.config = "[x]\nkey = 1\n";
  h.string_attributes = {{"output_fn", "gt-log-odds-v0"}};
  h.number_attributes = {{"tau_rel", 0.05}};
  return h;
}

// Deterministic content of epoch `e` (every value distinct).
EpochBlock block_for(int e, const StudyShape& s) {
  EpochBlock b;
  b.sample0 = 0;
  b.count = s.samples;
  const std::size_t K = s.n + 1, L = std::size_t{1} << s.n, S = s.samples;
  auto fill = [&](std::vector<double>& v, std::size_t size, double base) {
    v.resize(size);
    for (std::size_t i = 0; i < size; ++i) v[i] = base + 1000.0 * e + static_cast<double>(i);
  };
  fill(b.and_pos, S * K, 1);
  fill(b.and_neg, S * K, 2);
  fill(b.or_pos, S * K, 3);
  fill(b.or_neg, S * K, 4);
  fill(b.loss, S, 5);
  fill(b.bound, S, 6);
  fill(b.threshold, S, 7);
  fill(b.values, S * L, 8);
  fill(b.inter_and, S * L, 9);
  fill(b.inter_or, S * L, 10);
  b.and_count.resize(S * K);
  b.or_count.resize(S * K);
  for (std::size_t i = 0; i < S * K; ++i) {
    b.and_count[i] = static_cast<std::int32_t>(i + e);
    b.or_count[i] = static_cast<std::int32_t>(2 * i + e);
  }
  return b;
}

EpochSummary summary_for(int e, const StudyShape& s) {
  EpochSummary m;
  m.epoch = e;
  m.train_loss = 1.0 / (e + 1);
  m.test_loss = 2.0 / (e + 1);
  m.train_acc = 0.5 + 0.01 * e;
  m.test_acc = 0.4 + 0.01 * e;
  m.jaccard.assign(static_cast<std::size_t>(s.classes) * (s.n + 1), 0.25 * e);
  return m;
}

void write_epoch(StudyWriter& w, int e, const StudyShape& s) {
  w.begin_epoch();
  w.write_block(block_for(e, s));
  w.end_epoch(summary_for(e, s));
}

const char* const kCompared[] = {
    "/epochs/epoch",      "/epochs/train_loss", "/epochs/test_loss",     "/epochs/train_acc",
    "/epochs/test_acc",   "/orders/and_pos",    "/orders/and_neg",       "/orders/or_pos",
    "/orders/or_neg",     "/extraction/loss",   "/extraction/bound",     "/extraction/threshold",
    "/values",            "/interactions/and",  "/interactions/or",      "/generalization/jaccard",
    "/orders/and_count",  "/orders/or_count",   "/samples/index"};

class StudyWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h5::prepare_library();
    dir_ = fs::temp_directory_path() /
           ("harsanyi_study_writer_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(StudyWriterTest, LayoutAndContents) {
  const StudyShape s = small_shape();
  const std::string out = path("a.h5");
  auto w = StudyWriter::create(out, false, s, small_header());
  for (int e = 0; e < 3; ++e) write_epoch(*w, e, s);
  EXPECT_FALSE(fs::exists(out));  // not complete before finish()
  w->finish(1.0);
  ASSERT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
  h5::File f = h5::File::open_read(out);
  EXPECT_EQ(f.info("/orders/and_pos").dims, (std::vector<hsize_t>{3, 4, 4}));
  EXPECT_EQ(f.info("/values").dims, (std::vector<hsize_t>{3, 4, 8}));
  EXPECT_EQ(f.info("/generalization/jaccard").dims, (std::vector<hsize_t>{3, 2, 4}));
  EXPECT_EQ(f.read_strings("/players/name"), small_header().player_names);
  EXPECT_EQ(f.read_all<std::int32_t>("/epochs/epoch"), (std::vector<std::int32_t>{0, 1, 2}));
  const std::vector<double> and_pos = f.read_all<double>("/orders/and_pos");
  const EpochBlock b2 = block_for(2, s);
  EXPECT_EQ(std::vector<double>(and_pos.begin() + 32, and_pos.end()), b2.and_pos);
  EXPECT_EQ(f.read_all<std::int32_t>("/orders/or_count")[16], block_for(1, s).or_count[0]);
  EXPECT_EQ(f.string_attribute("kind"), "study");
  EXPECT_EQ(f.string_attribute("output_fn"), "gt-log-odds-v0");
  EXPECT_EQ(f.double_attribute("complete"), 1.0);
  EXPECT_EQ(f.double_attribute("epochs_written"), 3.0);
}

TEST_F(StudyWriterTest, ResumeAfterHalfWrittenEpochEqualsUninterrupted) {
  const StudyShape s = small_shape();
  const std::string whole = path("whole.h5"), cut = path("cut.h5");
  {
    auto w = StudyWriter::create(whole, false, s, small_header());
    for (int e = 0; e < 4; ++e) write_epoch(*w, e, s);
    w->finish(1.0);
  }
  {
    auto w = StudyWriter::create(cut, false, s, small_header());
    write_epoch(*w, 0, s);
    write_epoch(*w, 1, s);
    w->begin_epoch();  // epoch 2 half written: its rows exist, epochs_written says 2
    EpochBlock garbage = block_for(77, s);
    w->write_block(garbage);
  }  // destroyed without end_epoch or finish: an interrupted run
  ASSERT_TRUE(StudyWriter::has_partial(cut));
  EXPECT_THROW(StudyWriter::create(cut, false, s, small_header()), UserError);
  EXPECT_THROW(StudyWriter::resume(cut, s, "[x]\nkey = 2\n"), UserError);  // other config
  {
    auto w = StudyWriter::resume(cut, s, small_header().config);
    ASSERT_EQ(w->written_epochs(), (std::vector<std::int32_t>{0, 1}));
    EXPECT_EQ(w->stored_header().sample_index, small_header().sample_index);
    write_epoch(*w, 2, s);
    write_epoch(*w, 3, s);
    w->finish(2.0);
  }
  h5::File a = h5::File::open_read(whole), b = h5::File::open_read(cut);
  for (const char* name : kCompared) {
    EXPECT_EQ(a.info(name).dims, b.info(name).dims) << name;
    EXPECT_EQ(a.read_all<double>(name), b.read_all<double>(name)) << name;
  }
}

TEST_F(StudyWriterTest, ResumeCutsTheHalfWrittenEpoch) {
  const StudyShape s = small_shape();
  const std::string out = path("d.h5");
  {
    auto w = StudyWriter::create(out, false, s, small_header());
    write_epoch(*w, 0, s);
    w->begin_epoch();
    w->write_block(block_for(1, s));
  }
  {
    h5::File f = h5::File::open_read(out + ".part");
    EXPECT_EQ(f.info("/orders/and_pos").dims[0], 2u);  // the half-written row is there
  }
  auto w = StudyWriter::resume(out, s, small_header().config);
  w->finish(0.0);
  h5::File f = h5::File::open_read(out);
  for (const char* name : kCompared)
    if (std::string(name) != "/samples/index") {
      EXPECT_EQ(f.info(name).dims[0], 1u) << name;
    }
}

TEST_F(StudyWriterTest, ResumeRefusesMissingOrForeignFiles) {
  const StudyShape s = small_shape();
  EXPECT_THROW(StudyWriter::resume(path("none.h5"), s, "x"), UserError);
  // a file that is not HDF5
  { std::FILE* f = std::fopen(path("junk.h5.part").c_str(), "w"); std::fputs("junk", f); std::fclose(f); }
  EXPECT_THROW(StudyWriter::resume(path("junk.h5"), s, "x"), UserError);
  // another shape
  {
    auto w = StudyWriter::create(path("b.h5"), false, s, small_header());
    write_epoch(*w, 0, s);
  }
  StudyShape other = s;
  other.samples = 5;
  EXPECT_THROW(StudyWriter::resume(path("b.h5"), other, small_header().config), UserError);
}

TEST_F(StudyWriterTest, ExistingOutputRefusedUnlessForced) {
  const StudyShape s = small_shape();
  const std::string out = path("c.h5");
  {
    auto w = StudyWriter::create(out, false, s, small_header());
    w->finish(0.0);
  }
  EXPECT_THROW(StudyWriter::create(out, false, s, small_header()), UserError);
  auto w = StudyWriter::create(out, true, s, small_header());
  write_epoch(*w, 0, s);
  w->finish(0.0);
  EXPECT_EQ(h5::File::open_read(out).info("/orders/and_pos").dims[0], 1u);
}

}  // namespace
}  // namespace harsanyi
