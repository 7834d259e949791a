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

}  // namespace harsanyi
