// The library's one error type.
//
// Every failure on an input or storage path (bad arguments, a missing version, a damaged or
// foreign database, an I/O error) is reported by throwing iavl::error, whose code() says what
// kind of failure it is and whose what() names the cause. Programmer errors (broken
// preconditions that no input can cause) are assertions.
#pragma once

#include <stdexcept>
#include <string>

namespace iavl {

enum class errc {
  invalid_argument,   ///< an argument breaks a documented limit (e.g. a key that is too long)
  version_not_found,  ///< the requested version does not exist or was deleted
  stale_branch,       ///< a working tree is committed on top of a version it did not branch from
  not_a_database,     ///< the path holds no iavl database (or something else entirely)
  format_mismatch,    ///< the database was written in another format version
  corruption,         ///< stored data fails its checks (bad encoding, hash or structure)
  io_error,           ///< the storage backend reported an I/O failure
};

/// A short, stable name for an error code ("corruption", "io_error", ...).
[[nodiscard]] const char* to_string(errc code) noexcept;

class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] errc code() const noexcept { return code_; }

 private:
  errc code_;
};

}  // namespace iavl
