// Helpers of the benchmark suite: reproducible keys and values, memory and disk measurement,
// timing and percentiles.
#pragma once

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace bench {

// ---- keys and values -----------------------------------------------------------------------

/// The splitmix64 finalizer: a bijection of 64-bit integers that scatters its input well.
inline std::uint64_t scramble(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

/// splitmix64: a fast generator for the random picks inside timed loops.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return scramble(state_ += 0x9e3779b97f4a7c15); }
  /// Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<__uint128_t>(next()) * n) >> 64);
  }
  bool coin() { return (next() >> 63) != 0; }

 private:
  std::uint64_t state_;
};

/// Key families. Key i of a family is a pure function of (family, i), so every store and
/// baseline sees the same keys, and the keys need no memory: the initial keys are
/// existing_keys 0..n-1, inserts use new_keys (a counter), misses use absent_keys.
enum key_family : std::uint64_t { existing_keys = 0x1e7a, absent_keys = 0xab5e, new_keys = 0x9e3f };

/// Random-looking binary keys of one length, written into an internal buffer: the view is
/// valid until the next call.
class key_maker {
 public:
  explicit key_maker(int length) : buf_(static_cast<std::size_t>(length) + 8, '\0'), length_(length) {}

  std::string_view operator()(key_family family, std::uint64_t i) {
    // The first 8 bytes are a bijection of i within a family: keys of a family never collide.
    const std::uint64_t seed = (i * 0x9e3779b97f4a7c15) ^ family;
    for (int off = 0; off < length_; off += 8) {
      const std::uint64_t word = scramble(seed + static_cast<std::uint64_t>(off));
      std::memcpy(buf_.data() + off, &word, 8);
    }
    return {buf_.data(), static_cast<std::size_t>(length_)};
  }

 private:
  std::string buf_;
  int length_;
};

/// Values of one length: views into a shared pool of random bytes at a varying offset.
class value_maker {
 public:
  explicit value_maker(int length) : length_(static_cast<std::size_t>(length)) {
    std::mt19937_64 gen(7);
    pool_.resize(pool_span + length_);
    for (char& c : pool_) c = static_cast<char>(gen());
  }
  std::string_view operator()(std::uint64_t r) const { return {pool_.data() + r % pool_span, length_}; }

 private:
  static constexpr std::size_t pool_span = 1 << 16;
  std::string pool_;
  std::size_t length_;
};

// ---- memory and disk -------------------------------------------------------------------------

/// A field of a /proc file of "name: value kB" lines (status, meminfo) in bytes, or -1.
inline std::int64_t proc_field_bytes(const char* file, std::string_view field) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::stoll(line.substr(field.size() + 1)) * 1024;  // the kernel reports kB
    }
  }
  return -1;
}

/// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"), or -1.
inline std::int64_t proc_status_bytes(std::string_view field) { return proc_field_bytes("/proc/self/status", field); }
/// A field of /proc/meminfo in bytes ("MemTotal"), or -1.
inline std::int64_t proc_meminfo_bytes(std::string_view field) { return proc_field_bytes("/proc/meminfo", field); }

/// Resident memory now without file pages (the program's code and libraries).
inline std::int64_t anon_rss_bytes() { return proc_status_bytes("RssAnon"); }
/// Peak resident memory since the last reset_peak_rss() (or since the process started).
inline std::int64_t peak_rss_bytes() { return proc_status_bytes("VmHWM"); }
/// Starts a new peak: Linux resets VmHWM to VmRSS when "5" is written to clear_refs.
inline bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}
/// Returns freed heap pages to the system, so that RSS counts live data only.
inline void release_free_memory() { malloc_trim(0); }
/// What malloc holds, from the system (every arena, and its mmapped chunks), and of that, what is
/// allocated (the rest is free memory it keeps).
struct heap_usage {
  std::int64_t held_bytes;
  std::int64_t in_use_bytes;
};
inline heap_usage malloc_heap_usage() {
  const struct mallinfo2 m = mallinfo2();
  return {static_cast<std::int64_t>(m.arena + m.hblkhd), static_cast<std::int64_t>(m.uordblks + m.hblkhd)};
}

/// Bytes of the regular files under `dir` (0 when it does not exist).
inline std::int64_t disk_bytes(const std::filesystem::path& dir) {
  std::error_code ec;
  std::int64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != decltype(it)();
       it.increment(ec)) {
    std::error_code file_ec;  // a file LevelDB deletes meanwhile counts nothing, and ends nothing
    if (it->is_regular_file(file_ec)) {
      const std::uintmax_t size = it->file_size(file_ec);
      if (!file_ec) total += static_cast<std::int64_t>(size);
    }
  }
  return total;
}

// ---- time -------------------------------------------------------------------------------------

class stopwatch {
 public:
  stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// The nearest-rank percentile p (0 < p <= 1) of `samples`; 0 when there are none.
inline double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
  const auto nth = samples.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(rank, 1) - 1);
  std::nth_element(samples.begin(), nth, samples.end());
  return *nth;
}

}  // namespace bench
