/// @file dataset_readers.h
/// @brief Readers of the dataset formats of DESIGN §3: IDX (MNIST / Fashion-MNIST), CIFAR-10
/// binary and CSV tables, plus the normalisation and label-noise helpers used by `load_split`.
/// Every problem with a file throws UserError naming the file, the problem and the remedy.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dataset.h"

namespace harsanyi {

/// @brief Reads an IDX pair `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]`
/// (the plain name is tried first, then `.gz`).
/// Images become float32 byte/255 of shape {1, H, W}; labels are the file's bytes and
/// num_classes = max label + 1.
/// @param prefix path prefix, e.g. "/usr/share/datasets/fashion-mnist/train"
/// @param limit read only the first `limit` samples (0 = all)
/// @throws UserError on a missing file (naming the names tried), a wrong magic number, a
///         truncated file, or image and label files of different counts.
Dataset read_idx(const std::string& prefix, std::int64_t limit);

/// @brief Reads CIFAR-10 binary batches: records of 1 label byte and 3072 bytes (the R, G and B
/// planes of 32×32), as float32 byte/255 of shape {3, 32, 32}.
/// @param path one `.bin` file, or a directory holding the batches: for `split` "train" the
///        files `data_batch_1.bin` .. `data_batch_5.bin` that exist (at least one), for "test"
///        `test_batch.bin`
/// @param split "train" or "test" (used only when `path` is a directory)
/// @param limit read only the first `limit` records (0 = all)
/// @throws UserError on missing files, a size that is not a multiple of 3073 bytes (truncated),
///         or a label above 9 (naming the record).
Dataset read_cifar10(const std::string& path, const std::string& split, std::int64_t limit);

/// Which data rows of a CSV file a read keeps (row i = the i-th data row after the header,
/// counting from 0).
enum class CsvRows {
  kAll,         ///< every row
  kSplitTrain,  ///< rows with i % 5 != 4 (the train part of a file split 4:1)
  kSplitTest,   ///< rows with i % 5 == 4 (the test part)
};

/// @brief Reads a CSV table (plain or gzip-compressed): a header row of column names, then one
/// row per sample. The label column is `label_column`, or the last column when it is empty; every
/// other column is a numeric feature (shape {F}, `feature_names` filled).
///
/// Labels: when every label text of the file is a non-negative integer ("3", also "3.0"), the
/// labels are those integers. Otherwise the distinct label texts of the whole file, sorted as
/// byte strings, are numbered 0..k-1 (so "-1" and "1" become 0 and 1; "cat", "dog" become 0, 1)
/// and stored in `class_names`. `classes`, when not empty, fixes that list instead (used for a
/// test file, so that its classes are numbered as the training file's are); a label text not in
/// it is an error.
/// Fields may be quoted with double quotes; surrounding blanks are ignored; empty lines are
/// skipped. Rows are selected by `rows`, then the first `limit` of them are kept (0 = all).
/// @throws UserError naming the file, line and column of a ragged row, a non-numeric or
///         non-finite cell, an unknown label column.
Dataset read_csv(const std::string& path, const std::string& label_column, std::int64_t limit,
                 CsvRows rows = CsvRows::kAll, const std::vector<std::string>& classes = {});

/// @brief x = (x - mean) / std for every element (DESIGN §6.1 `data.normalize`).
/// @throws UserError when std is not positive and finite.
void normalize_dataset(Dataset& data, double mean, double std);

/// @brief A uniformly distributed integer in [0, bound) from `rng`, identical on every standard
/// library (rejection sampling on the raw 64-bit outputs: draws below 2^64 mod bound are
/// rejected, then the remainder modulo bound is returned). `bound` must be at least 1.
std::uint64_t bounded_random(std::mt19937_64& rng, std::uint64_t bound);

}  // namespace harsanyi
