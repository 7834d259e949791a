/// @file user_error_matchers.h
/// @brief Test helpers for checking UserError messages.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "user_error.h"

namespace harsanyi {

/// The UserError message of `f`, or "" when it does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace harsanyi

/// Expects the message `text` to contain `part`.
#define EXPECT_HAS(text, part)                               \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "message: " << (text) << "\nmissing: " << (part)
