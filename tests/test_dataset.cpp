// Dataset readers on files written here (good and damaged), the real Fashion-MNIST when
// installed, load_split, and the seeded label noise.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataset_readers.h"
#include "study_config.h"
#include "user_error.h"
#include "user_error_matchers.h"

using namespace harsanyi;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

/// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("harsanyi_test_dataset_" + std::string(info->test_suite_name()) + "_" + info->name() +
             "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void write_text(const std::string& path, const std::string& text) {
  write_file(path, Bytes(text.begin(), text.end()));
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

void put_u32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

/// IDX images: `count` images of rows×cols, pixel (i, r, c) = (7*i + 3*r + c) % 256.
Bytes idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                 std::uint32_t magic = 0x803) {
  Bytes b;
  put_u32(b, magic);
  put_u32(b, count);
  put_u32(b, rows);
  put_u32(b, cols);
  for (std::uint32_t i = 0; i < count; ++i)
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t c = 0; c < cols; ++c)
        b.push_back(static_cast<unsigned char>((7 * i + 3 * r + c * 40) % 256));
  return b;
}

Bytes idx_labels(const Bytes& labels, std::uint32_t magic = 0x801) {
  Bytes b;
  put_u32(b, magic);
  put_u32(b, static_cast<std::uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void expect_idx_pixels(const Dataset& d, std::uint32_t count, std::uint32_t rows,
                       std::uint32_t cols) {
  ASSERT_EQ(d.count(), static_cast<std::int64_t>(count));
  ASSERT_EQ(d.shape, (std::vector<std::int64_t>{1, rows, cols}));
  ASSERT_EQ(d.data.size(), static_cast<std::size_t>(count * rows * cols));
  for (std::uint32_t i = 0; i < count; ++i)
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t c = 0; c < cols; ++c) {
        const float expected = static_cast<float>((7 * i + 3 * r + c * 40) % 256) / 255.0f;
        ASSERT_EQ(d.sample(i)[r * cols + c], expected) << i << " " << r << " " << c;
      }
}

}  // namespace

// ---- IDX ---------------------------------------------------------------------------------

TEST(Idx, PlainFilesGiveExactPixelsAndLabels) {
  TempDir dir;
  write_file(dir / "p-images-idx3-ubyte", idx_images(3, 2, 7));
  write_file(dir / "p-labels-idx1-ubyte", idx_labels({1, 0, 4}));
  const Dataset d = read_idx(dir / "p", 0);
  expect_idx_pixels(d, 3, 2, 7);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0, 4}));
  EXPECT_EQ(d.num_classes, 5);
  EXPECT_TRUE(d.is_image());
  EXPECT_EQ(d.sample(2)[6], 254.0f / 255.0f);  // (7*2 + 3*0 + 6*40) % 256
}

TEST(Idx, GzFilesAndLimit) {
  TempDir dir;
  write_gz(dir / "g-images-idx3-ubyte.gz", idx_images(5, 4, 3));
  write_gz(dir / "g-labels-idx1-ubyte.gz", idx_labels({2, 9, 3, 3, 0}));
  const Dataset all = read_idx(dir / "g", 0);
  expect_idx_pixels(all, 5, 4, 3);
  EXPECT_EQ(all.labels, (std::vector<std::int32_t>{2, 9, 3, 3, 0}));
  EXPECT_EQ(all.num_classes, 10);
  const Dataset two = read_idx(dir / "g", 2);
  expect_idx_pixels(two, 2, 4, 3);
  EXPECT_EQ(two.labels, (std::vector<std::int32_t>{2, 9}));
  EXPECT_EQ(two.num_classes, 10);
  EXPECT_EQ(read_idx(dir / "g", 99).count(), 5);
}

TEST(Idx, PlainNameIsTriedBeforeGz) {
  TempDir dir;
  write_file(dir / "b-images-idx3-ubyte", idx_images(1, 1, 1));
  write_gz(dir / "b-images-idx3-ubyte.gz", idx_images(2, 1, 1));
  write_gz(dir / "b-labels-idx1-ubyte.gz", idx_labels({0}));
  EXPECT_EQ(read_idx(dir / "b", 0).count(), 1);
}

TEST(Idx, MissingFileNamesTheNamesTried) {
  TempDir dir;
  const std::string m = error_of([&] { read_idx(dir / "none", 0); });
  EXPECT_HAS(m, dir / "none-images-idx3-ubyte");
  EXPECT_HAS(m, dir / "none-images-idx3-ubyte.gz;");
  EXPECT_HAS(m, "not found");
  write_file(dir / "x-images-idx3-ubyte", idx_images(1, 1, 1));
  const std::string m2 = error_of([&] { read_idx(dir / "x", 0); });
  EXPECT_HAS(m2, dir / "x-labels-idx1-ubyte.gz");
}

TEST(Idx, WrongMagicNumberIsReportedWithFoundAndExpected) {
  TempDir dir;
  // A labels file where the images should be.
  write_file(dir / "w-images-idx3-ubyte", idx_labels({1, 2}));
  write_file(dir / "w-labels-idx1-ubyte", idx_labels({1, 2}));
  const std::string m = error_of([&] { read_idx(dir / "w", 0); });
  EXPECT_HAS(m, dir / "w-images-idx3-ubyte");
  EXPECT_HAS(m, "wrong magic number");
  EXPECT_HAS(m, "0x00000801");
  EXPECT_HAS(m, "0x00000803");
  write_file(dir / "w-images-idx3-ubyte", idx_images(2, 2, 2));
  write_file(dir / "w-labels-idx1-ubyte", idx_labels({1, 2}, 0x802));
  const std::string m2 = error_of([&] { read_idx(dir / "w", 0); });
  EXPECT_HAS(m2, dir / "w-labels-idx1-ubyte");
  EXPECT_HAS(m2, "0x00000802");
}

TEST(Idx, TruncatedFilesReportExpectedAndGotBytes) {
  TempDir dir;
  Bytes images = idx_images(3, 2, 2);  // 16 + 12 bytes
  images.resize(images.size() - 5);
  write_file(dir / "t-images-idx3-ubyte", images);
  write_file(dir / "t-labels-idx1-ubyte", idx_labels({0, 1, 2}));
  std::string m = error_of([&] { read_idx(dir / "t", 0); });
  EXPECT_HAS(m, dir / "t-images-idx3-ubyte");
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected 28 bytes");
  EXPECT_HAS(m, "got 23");
  // Compressed: the gzip stream is whole, its content is short.
  fs::remove(dir / "t-images-idx3-ubyte");
  write_gz(dir / "t-images-idx3-ubyte.gz", images);
  m = error_of([&] { read_idx(dir / "t", 0); });
  EXPECT_HAS(m, dir / "t-images-idx3-ubyte.gz");
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected 28 bytes");
  EXPECT_HAS(m, "got 23");
  // A header cut short.
  Bytes labels = idx_labels({0, 1, 2});
  labels.resize(6);
  write_file(dir / "t-images-idx3-ubyte", idx_images(3, 2, 2));
  write_file(dir / "t-labels-idx1-ubyte", labels);
  m = error_of([&] { read_idx(dir / "t", 0); });
  EXPECT_HAS(m, dir / "t-labels-idx1-ubyte");
  EXPECT_HAS(m, "truncated");
}

TEST(Idx, TruncatedGzipStreamIsAnError) {
  TempDir dir;
  write_gz(dir / "z-images-idx3-ubyte.gz", idx_images(200, 28, 28));
  std::ifstream in(dir / "z-images-idx3-ubyte.gz", std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  write_file(dir / "z-images-idx3-ubyte.gz", gz);
  write_file(dir / "z-labels-idx1-ubyte", idx_labels(Bytes(200, 1)));
  const std::string m = error_of([&] { read_idx(dir / "z", 0); });
  EXPECT_HAS(m, dir / "z-images-idx3-ubyte.gz");
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected 156816 bytes");
}

TEST(Idx, ImageAndLabelCountMismatch) {
  TempDir dir;
  write_file(dir / "c-images-idx3-ubyte", idx_images(3, 2, 2));
  write_file(dir / "c-labels-idx1-ubyte", idx_labels({0, 1}));
  const std::string m = error_of([&] { read_idx(dir / "c", 0); });
  EXPECT_HAS(m, dir / "c-images-idx3-ubyte");
  EXPECT_HAS(m, dir / "c-labels-idx1-ubyte");
  EXPECT_HAS(m, "3 images");
  EXPECT_HAS(m, "2 labels");
}

// ---- CIFAR-10 ----------------------------------------------------------------------------

namespace {

/// CIFAR-10 records; record i has label labels[i] and byte (plane p, pixel k) = (i + 5p + k) % 256.
Bytes cifar_records(const Bytes& labels, int first = 0) {
  Bytes b;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    b.push_back(labels[i]);
    for (int p = 0; p < 3; ++p)
      for (int k = 0; k < 1024; ++k)
        b.push_back(static_cast<unsigned char>((first + static_cast<int>(i) + 5 * p + k) % 256));
  }
  return b;
}

void expect_cifar_record(const Dataset& d, std::int64_t index, int generator_index) {
  for (int p = 0; p < 3; ++p)
    for (int k = 0; k < 1024; k += 37) {
      const float expected = static_cast<float>((generator_index + 5 * p + k) % 256) / 255.0f;
      ASSERT_EQ(d.sample(index)[p * 1024 + k], expected) << index << " " << p << " " << k;
    }
  // Plane R pixel (row 1, col 2) is byte 1 + 32 + 2 of the record.
  ASSERT_EQ(d.sample(index)[34], static_cast<float>((generator_index + 34) % 256) / 255.0f);
}

}  // namespace

TEST(Cifar10, OneFile) {
  TempDir dir;
  write_file(dir / "one.bin", cifar_records({3, 9, 0}));
  const Dataset d = read_cifar10(dir / "one.bin", "train", 0);
  ASSERT_EQ(d.count(), 3);
  EXPECT_EQ(d.shape, (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{3, 9, 0}));
  EXPECT_EQ(d.num_classes, 10);
  for (int i = 0; i < 3; ++i) expect_cifar_record(d, i, i);
  EXPECT_EQ(read_cifar10(dir / "one.bin", "test", 2).count(), 2);
}

TEST(Cifar10, DirectoryTrainBatchesThatExistAndTestBatch) {
  TempDir dir;
  write_file(dir / "data_batch_1.bin", cifar_records({1, 2}, 0));
  write_file(dir / "data_batch_3.bin", cifar_records({4, 5, 6}, 100));
  write_file(dir / "test_batch.bin", cifar_records({7}, 50));
  const Dataset train = read_cifar10(dir / "", "train", 0);
  ASSERT_EQ(train.count(), 5);
  EXPECT_EQ(train.labels, (std::vector<std::int32_t>{1, 2, 4, 5, 6}));
  EXPECT_EQ(train.num_classes, 7);
  expect_cifar_record(train, 1, 1);
  expect_cifar_record(train, 2, 100);
  expect_cifar_record(train, 4, 102);
  const Dataset limited = read_cifar10(dir / "", "train", 3);
  EXPECT_EQ(limited.labels, (std::vector<std::int32_t>{1, 2, 4}));
  const Dataset test = read_cifar10(dir / "", "test", 0);
  ASSERT_EQ(test.count(), 1);
  EXPECT_EQ(test.labels[0], 7);
  expect_cifar_record(test, 0, 50);
}

TEST(Cifar10, MissingBatches) {
  TempDir dir;
  std::string m = error_of([&] { read_cifar10(dir / "", "train", 0); });
  EXPECT_HAS(m, "data_batch_1.bin");
  EXPECT_HAS(m, "data_batch_5.bin");
  m = error_of([&] { read_cifar10(dir / "", "test", 0); });
  EXPECT_HAS(m, "test_batch.bin");
  m = error_of([&] { read_cifar10(dir / "nothing.bin", "train", 0); });
  EXPECT_HAS(m, dir / "nothing.bin");
}

TEST(Cifar10, TruncatedFile) {
  TempDir dir;
  Bytes b = cifar_records({1, 2, 3});
  b.resize(b.size() - 7);
  write_file(dir / "short.bin", b);
  const std::string m = error_of([&] { read_cifar10(dir / "short.bin", "train", 0); });
  EXPECT_HAS(m, dir / "short.bin");
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "9212 bytes");
  EXPECT_HAS(m, "3066 bytes left over");
}

TEST(Cifar10, LabelOutOfRangeNamesTheRecord) {
  TempDir dir;
  write_file(dir / "bad.bin", cifar_records({1, 2, 10, 3}));
  const std::string m = error_of([&] { read_cifar10(dir / "bad.bin", "train", 0); });
  EXPECT_HAS(m, dir / "bad.bin");
  EXPECT_HAS(m, "label out of range");
  EXPECT_HAS(m, "record 2");
  EXPECT_HAS(m, "label 10");
}

// ---- CSV ---------------------------------------------------------------------------------

TEST(Csv, LastColumnIsTheLabelByDefault) {
  TempDir dir;
  write_text(dir / "t.csv", "a,b,class\n1.5,-2,3\n0,1e-3,0\n\n 7 , +8 ,1\n");
  const Dataset d = read_csv(dir / "t.csv", "", 0);
  ASSERT_EQ(d.count(), 3);
  EXPECT_EQ(d.shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{3, 0, 1}));
  EXPECT_EQ(d.num_classes, 4);
  EXPECT_TRUE(d.class_names.empty());
  EXPECT_EQ(d.data, (std::vector<float>{1.5f, -2.0f, 0.0f, 1e-3f, 7.0f, 8.0f}));
  EXPECT_FALSE(d.is_image());
}

TEST(Csv, NamedLabelColumnQuotesCrlfAndGzip) {
  TempDir dir;
  const std::string text = "\"x 1\",\"label\",y\r\n0.25,2,4\r\n\"0.5\",1.0,-1\r\n3,0,2.5\r\n";
  write_text(dir / "t.csv", text);
  write_gz(dir / "t.csv.gz", Bytes(text.begin(), text.end()));
  for (const std::string file : {"t.csv", "t.csv.gz"}) {
    const Dataset d = read_csv(dir / file, "label", 0);
    ASSERT_EQ(d.count(), 3) << file;
    EXPECT_EQ(d.feature_names, (std::vector<std::string>{"x 1", "y"}));
    EXPECT_EQ(d.labels, (std::vector<std::int32_t>{2, 1, 0}));
    EXPECT_EQ(d.data, (std::vector<float>{0.25f, 4.0f, 0.5f, -1.0f, 3.0f, 2.5f}));
    EXPECT_EQ(d.num_classes, 3);
  }
  const std::string m = error_of([&] { read_csv(dir / "t.csv", "target", 0); });
  EXPECT_HAS(m, "'target'");
  EXPECT_HAS(m, "'x 1'");
}

TEST(Csv, StringLabelsAreNumberedInSortedOrder) {
  TempDir dir;
  write_text(dir / "s.csv", "f,kind\n1,dog\n2,cat\n3,emu\n4,cat\n");
  const Dataset d = read_csv(dir / "s.csv", "", 0);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "emu"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0, 2, 0}));
  EXPECT_EQ(d.num_classes, 3);
  // Negative integers are not class indices: "-1" < "1" as text.
  write_text(dir / "n.csv", "f,y\n1,1\n2,-1\n");
  const Dataset n = read_csv(dir / "n.csv", "", 0);
  EXPECT_EQ(n.labels, (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(n.class_names, (std::vector<std::string>{"-1", "1"}));
  // A fixed class list (the training file's) numbers a test file.
  const Dataset fixed = read_csv(dir / "s.csv", "", 0, CsvRows::kAll, {"cat", "dog", "emu", "yak"});
  EXPECT_EQ(fixed.labels, (std::vector<std::int32_t>{1, 0, 2, 0}));
  EXPECT_EQ(fixed.num_classes, 4);
  const std::string m = error_of([&] { read_csv(dir / "s.csv", "", 0, CsvRows::kAll, {"cat"}); });
  EXPECT_HAS(m, "'dog'");
  EXPECT_HAS(m, dir / "s.csv" + ":2");
}

TEST(Csv, SplitRowsFourToOneAndLimit) {
  TempDir dir;
  std::string text = "v,label\n";
  for (int i = 0; i < 12; ++i) text += std::to_string(i) + "," + std::to_string(i % 3) + "\n";
  write_text(dir / "r.csv", text);
  const Dataset train = read_csv(dir / "r.csv", "", 0, CsvRows::kSplitTrain);
  const Dataset test = read_csv(dir / "r.csv", "", 0, CsvRows::kSplitTest);
  EXPECT_EQ(train.data, (std::vector<float>{0, 1, 2, 3, 5, 6, 7, 8, 10, 11}));
  EXPECT_EQ(test.data, (std::vector<float>{4, 9}));
  EXPECT_EQ(test.labels, (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(test.num_classes, 2);
  const Dataset first3 = read_csv(dir / "r.csv", "", 3, CsvRows::kSplitTrain);
  EXPECT_EQ(first3.data, (std::vector<float>{0, 1, 2}));
}

TEST(Csv, RaggedRowNamesFileAndLine) {
  TempDir dir;
  write_text(dir / "bad.csv", "a,b,c\n1,2,0\n\n1,2\n");
  const std::string m = error_of([&] { read_csv(dir / "bad.csv", "", 0); });
  EXPECT_HAS(m, dir / "bad.csv" + ":4");
  EXPECT_HAS(m, "ragged");
  EXPECT_HAS(m, "2 columns");
}

TEST(Csv, NonNumericCellNamesFileLineAndColumn) {
  TempDir dir;
  write_text(dir / "bad.csv", "a,b,c\n1,2,0\n1,abc,0\n");
  std::string m = error_of([&] { read_csv(dir / "bad.csv", "", 0); });
  EXPECT_HAS(m, dir / "bad.csv" + ":3");
  EXPECT_HAS(m, "column 2 ('b')");
  EXPECT_HAS(m, "'abc'");
  write_text(dir / "nan.csv", "a,b\nnan,1\n");
  m = error_of([&] { read_csv(dir / "nan.csv", "", 0); });
  EXPECT_HAS(m, "column 1 ('a')");
  write_text(dir / "only.csv", "label\n1\n");
  m = error_of([&] { read_csv(dir / "only.csv", "", 0); });
  EXPECT_HAS(m, "feature");
  m = error_of([&] { read_csv(dir / "missing.csv", "", 0); });
  EXPECT_HAS(m, dir / "missing.csv");
}

// ---- load_split --------------------------------------------------------------------------

TEST(LoadSplit, IdxWithLimitsAndNormalize) {
  TempDir dir;
  write_file(dir / "tr-images-idx3-ubyte", idx_images(4, 2, 2));
  write_file(dir / "tr-labels-idx1-ubyte", idx_labels({0, 1, 2, 1}));
  write_file(dir / "te-images-idx3-ubyte", idx_images(2, 2, 2));
  write_file(dir / "te-labels-idx1-ubyte", idx_labels({1, 1}));
  StudyConfig c;
  c.data.train = dir / "tr";
  c.data.test = dir / "te";
  c.data.train_limit = 3;
  c.data.test_limit = 0;
  const Dataset train = load_split(c, "train");
  EXPECT_EQ(train.count(), 3);
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(load_split(c, "test").count(), 2);
  c.data.normalize = {0.5, 0.25};
  const Dataset norm = load_split(c, "train");
  for (std::size_t i = 0; i < train.data.size(); ++i) {
    ASSERT_EQ(norm.data[i], static_cast<float>((static_cast<double>(train.data[i]) - 0.5) / 0.25));
  }
  c.data.test = "";
  EXPECT_HAS(error_of([&] { load_split(c, "test"); }), "data.test");
}

TEST(LoadSplit, CsvWithoutTestFileSplitsTheTrainFile) {
  TempDir dir;
  std::string text = "v,label\n";
  for (int i = 0; i < 10; ++i) text += std::to_string(i) + "," + (i < 5 ? "no" : "yes") + "\n";
  write_text(dir / "r.csv", text);
  StudyConfig c;
  c.data.format = "csv";
  c.data.train = dir / "r.csv";
  c.data.test = "";
  c.data.train_limit = 0;
  const Dataset train = load_split(c, "train");
  const Dataset test = load_split(c, "test");
  EXPECT_EQ(train.count(), 8);
  EXPECT_EQ(test.data, (std::vector<float>{4, 9}));
  EXPECT_EQ(test.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(train.num_classes, 2);
  // A separate test file numbers its label texts as the training file does.
  write_text(dir / "t.csv", "v,label\n1,yes\n");
  c.data.test = dir / "t.csv";
  const Dataset sep = load_split(c, "test");
  EXPECT_EQ(sep.labels, (std::vector<std::int32_t>{1}));
  EXPECT_EQ(sep.num_classes, 2);
}

TEST(LoadSplit, Cifar10DirectoryServesBothSplits) {
  TempDir dir;
  write_file(dir / "data_batch_2.bin", cifar_records({1, 2}));
  write_file(dir / "test_batch.bin", cifar_records({5}));
  StudyConfig c;
  c.data.format = "cifar10";
  c.data.train = dir / "";
  c.data.test = "";
  EXPECT_EQ(load_split(c, "train").count(), 2);
  EXPECT_EQ(load_split(c, "test").labels, (std::vector<std::int32_t>{5}));
}

// ---- the real Fashion-MNIST ----------------------------------------------------------------

TEST(FashionMnist, TrainAndTestSplits) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!fs::exists(dir + "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist absent";
  // Reference values read with Python's gzip module from the same files.
  const Dataset train = read_idx(dir + "train", 0);
  ASSERT_EQ(train.count(), 60000);
  EXPECT_EQ(train.shape, (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_EQ(std::vector<std::int32_t>(train.labels.begin(), train.labels.begin() + 10),
            (std::vector<std::int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(train.labels.back(), 5);
  EXPECT_EQ(train.sample(0)[14 * 28 + 14], 217.0f / 255.0f);
  EXPECT_EQ(train.sample(0)[10 * 28 + 20], 210.0f / 255.0f);
  EXPECT_EQ(train.sample(1)[5 * 28 + 10], 101.0f / 255.0f);
  EXPECT_EQ(train.sample(123)[20 * 28 + 7], 62.0f / 255.0f);
  // Byte sums: every element must be exactly byte/255 for some byte.
  std::int64_t sum0 = 0, sum_all = 0;
  for (float x : train.data) {
    const long byte = std::lround(x * 255.0f);
    ASSERT_EQ(x, static_cast<float>(byte) / 255.0f);
    sum_all += byte;
  }
  for (int e = 0; e < 784; ++e) sum0 += std::lround(train.sample(0)[e] * 255.0f);
  EXPECT_EQ(sum0, 76247);
  EXPECT_EQ(sum_all, 3431114169);

  const Dataset test = read_idx(dir + "t10k", 0);
  ASSERT_EQ(test.count(), 10000);
  EXPECT_EQ(test.num_classes, 10);
  EXPECT_EQ(std::vector<std::int32_t>(test.labels.begin(), test.labels.begin() + 10),
            (std::vector<std::int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  EXPECT_EQ(test.sample(0)[14 * 28 + 14], 110.0f / 255.0f);
  EXPECT_EQ(test.sample(9999)[14 * 28 + 14], 132.0f / 255.0f);
  EXPECT_EQ(test.sample(123)[20 * 28 + 7], 227.0f / 255.0f);

  const Dataset first = read_idx(dir + "train", 1000);
  ASSERT_EQ(first.count(), 1000);
  EXPECT_TRUE(std::equal(first.data.begin(), first.data.end(), train.data.begin()));
}

// ---- label noise -------------------------------------------------------------------------

namespace {

Dataset labelled(std::int64_t count, std::int32_t classes) {
  Dataset d;
  d.source = "synthetic";
  d.shape = {1};
  d.num_classes = classes;
  for (std::int64_t i = 0; i < count; ++i) {
    d.labels.push_back(static_cast<std::int32_t>(i % classes));
    d.data.push_back(0.0f);
  }
  return d;
}

}  // namespace

TEST(LabelNoise, ChangesExactlyTheRoundedCountToOtherClasses) {
  const Dataset d = labelled(1000, 10);
  for (double fraction : {0.0, 0.001, 0.1, 0.2345, 0.5, 1.0}) {
    const std::vector<std::int32_t> noisy = noisy_labels(d, fraction, 7);
    ASSERT_EQ(noisy.size(), d.labels.size());
    std::int64_t changed = 0;
    for (std::size_t i = 0; i < noisy.size(); ++i) {
      ASSERT_GE(noisy[i], 0);
      ASSERT_LT(noisy[i], 10);
      changed += noisy[i] != d.labels[i];
    }
    EXPECT_EQ(changed, std::llround(fraction * 1000)) << fraction;
  }
  const Dataset two = labelled(7, 2);
  const std::vector<std::int32_t> flipped = noisy_labels(two, 1.0, 3);
  for (std::size_t i = 0; i < flipped.size(); ++i) EXPECT_EQ(flipped[i], 1 - two.labels[i]);
}

TEST(LabelNoise, DeterministicAndGolden) {
  const Dataset d = labelled(20, 10);
  const std::vector<std::int32_t> a = noisy_labels(d, 0.25, 42);
  EXPECT_EQ(a, noisy_labels(d, 0.25, 42));
  EXPECT_NE(a, noisy_labels(d, 0.25, 43));
  // Golden output (bounded_random on std::mt19937_64, the same on every standard library),
  // reproduced by an independent Python implementation of mt19937-64 and of the draw order.
  EXPECT_EQ(
      a, (std::vector<std::int32_t>{5, 8, 4, 3, 4, 5, 2, 7, 8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> draws;
  for (int i = 0; i < 8; ++i) draws.push_back(bounded_random(rng, 10));
  EXPECT_EQ(draws, (std::vector<std::uint64_t>{8, 2, 0, 6, 4, 9, 8, 5}));
}

TEST(LabelNoise, BoundedRandomIsInRangeAndCoversIt) {
  std::mt19937_64 rng(5);
  std::vector<int> seen(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const std::uint64_t r = bounded_random(rng, 7);
    ASSERT_LT(r, 7u);
    ++seen[r];
  }
  for (int s : seen) EXPECT_GT(s, 850);
  EXPECT_EQ(bounded_random(rng, 1), 0u);
  EXPECT_THROW(bounded_random(rng, 0), std::invalid_argument);
}

TEST(LabelNoise, Errors) {
  EXPECT_THROW(noisy_labels(labelled(10, 3), 1.5, 0), UserError);
  EXPECT_THROW(noisy_labels(labelled(10, 1), 0.5, 0), UserError);
  EXPECT_EQ(noisy_labels(labelled(10, 1), 0.0, 0), labelled(10, 1).labels);
}
