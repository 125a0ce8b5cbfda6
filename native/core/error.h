// Error type for everything native: a code (ERR_PATHO_*) plus a message. Native code throws
// patho::Error; the binding turns it into a JS Error with .code. Nothing here aborts the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace patho {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Build a message from stream pieces: PATHO_THROW("ERR_PATHO_SHAPE", "conv2dForward: x " << s).
#define PATHO_THROW(code, msg)                     \
  do {                                             \
    std::ostringstream patho_os_;                  \
    patho_os_ << msg;                              \
    throw ::patho::Error((code), patho_os_.str()); \
  } while (0)

#define PATHO_CHECK(cond, code, msg)     \
  do {                                   \
    if (!(cond)) PATHO_THROW(code, msg); \
  } while (0)

}  // namespace patho
