/// @file user_error.h
/// @brief The exception for problems with the user's input or request.
#pragma once

#include <stdexcept>

namespace harsanyi {

/// A problem with the user's input or request: printed as one line, exit code 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace harsanyi
