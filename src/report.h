/// @file report.h
/// @brief `harsanyi report`: readable tables from harsanyi's HDF5 files.
#pragma once

#include <cstdio>
#include <string>

namespace harsanyi {

/// @brief Prints the per-order table of an extraction file: for each order k, the mean over
/// samples of A_k^+ and A_k^- and of the salient counts, for AND and (if present) OR; then the
/// mean loss, mean order and sparsity. Throws UserError if the file is not an extraction file.
void print_extraction_report(const std::string& path, std::FILE* out);

/// @brief Prints the per-epoch table of a study file: train and test loss, their gap, accuracy,
/// the strength-weighted mean interaction order, the mean salient AND / OR counts per sample,
/// and the per-order strength distribution as a compact row (one bar per order, scaled to the
/// epoch's largest order). Works on a finished study and on the `.part` of a running one.
void print_study_report(const std::string& path, std::FILE* out);

/// Prints the report matching the file's kind (study or extraction).
void print_report(const std::string& path, std::FILE* out);

}  // namespace harsanyi
