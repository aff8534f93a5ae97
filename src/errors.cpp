#include "iavl/errors.hpp"

namespace iavl {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::version_not_found: return "version_not_found";
    case errc::stale_branch: return "stale_branch";
    case errc::not_a_database: return "not_a_database";
    case errc::format_mismatch: return "format_mismatch";
    case errc::corruption: return "corruption";
    case errc::io_error: return "io_error";
  }
  return "unknown";
}

}  // namespace iavl
