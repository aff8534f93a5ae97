// open_leveldb_store(): the node store in LevelDB. The only file that includes LevelDB headers.
#include "iavl/leveldb_store.hpp"

#include <fcntl.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>

#include "iavl/detail/store_keys.hpp"
#include "iavl/errors.hpp"

namespace iavl {

namespace {

[[noreturn]] void fail(const leveldb::Status& s, const std::string& what) {
  const errc code = s.IsCorruption() ? errc::corruption : errc::io_error;
  throw error(code, "leveldb " + what + ": " + s.ToString());
}

// After a scan, also one its callback stopped: an iterator steps over a block it could not read
// (a checksum mismatch) and only records the error, so what the scan saw may lack records, such
// as the root record that makes a version exist.
void check_scan(const leveldb::Iterator& it) {
  if (!it.status().ok()) fail(it.status(), "scan");
}

// A table file that starts writing itself back to the disk every MiB (sync_file_range), so
// that its closing sync has little left to write. LevelDB syncs each table it flushes (16 MB at
// once with our memtable) and the log's sync, which a commit waits for, queued behind it: with
// the tables' writes spread out, the log's syncs meet smaller ones (see benchmarks/README.md).
// It writes whole 64 KiB pieces at offsets that are multiples of them: LevelDB flushes after
// every block of about 4 KiB, and each such write into a new page made the kernel zero the rest
// of the page first (ext4's zero_user_segments: 3-8% of all samples at 10M keys). Nothing reads
// a table before it is closed, so holding those pieces back changes nothing else.
class smoothed_table_file final : public leveldb::WritableFile {
 public:
  smoothed_table_file(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}
  smoothed_table_file(const smoothed_table_file&) = delete;
  smoothed_table_file& operator=(const smoothed_table_file&) = delete;
  ~smoothed_table_file() override {
    if (fd_ >= 0) (void)::close(fd_);
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    buffer_.append(data.data(), data.size());
    return buffer_.size() >= buffer_bytes ? write_buffer(buffer_.size() / buffer_bytes * buffer_bytes)
                                          : leveldb::Status::OK();
  }
  leveldb::Status Flush() override { return leveldb::Status::OK(); }  // see above
  leveldb::Status Sync() override {
    leveldb::Status s = write_buffer();
    if (s.ok() && ::fdatasync(fd_) != 0) s = io_error("fdatasync");
    return s;
  }
  leveldb::Status Close() override {
    leveldb::Status s = write_buffer();
    if (::close(fd_) != 0 && s.ok()) s = io_error("close");
    fd_ = -1;
    return s;
  }

 private:
  static constexpr std::size_t buffer_bytes = std::size_t{64} << 10;
  static constexpr off_t writeback_bytes = off_t{1} << 20;

  leveldb::Status io_error(const char* what) const {
    const int e = errno;  // before anything below can change it
    return leveldb::Status::IOError(name_, std::string(what) + ": " + std::strerror(e));
  }
  // Writes the first `bytes` of the buffer (all of it by default).
  leveldb::Status write_buffer(std::size_t bytes = std::string::npos) {
    const char* p = buffer_.data();
    std::size_t left = std::min(bytes, buffer_.size());
    const std::size_t total = left;
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        buffer_.erase(0, total - left);  // what did reach the file is not written again
        return io_error("write");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      written_ += n;
    }
    buffer_.erase(0, total);
#if defined(SYNC_FILE_RANGE_WRITE)
    if (written_ - started_ >= writeback_bytes) {
      // Advice only: on failure the closing sync writes it all.
      (void)::sync_file_range(fd_, started_, written_ - started_, SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
#endif
    return leveldb::Status::OK();
  }

  std::string name_;
  int fd_;
  std::string buffer_;
  off_t written_ = 0;  // bytes written to the file
  off_t started_ = 0;  // writeback started for the bytes before this
};

// How many table files may keep a descriptor open: a fifth of the process's limit, as LevelDB's
// own environment allows itself. LevelDB keeps up to 990 tables open, and the soft limit is often
// 1024; beyond the budget a read opens its file for itself. The limit is read at each table's
// opening (rare), so that it follows setrlimit.
std::atomic<long> kept_descriptors{0};

bool take_descriptor() {
  rlimit limit{};
  const long budget = ::getrlimit(RLIMIT_NOFILE, &limit) != 0 ? 0
                      : limit.rlim_cur == RLIM_INFINITY       ? std::numeric_limits<long>::max()
                                                              : static_cast<long>(limit.rlim_cur / 5);
  if (kept_descriptors.fetch_add(1) < budget) return true;
  kept_descriptors.fetch_sub(1);
  return false;
}

// A table file read with pread(2), not through the memory map LevelDB's environment puts it in:
// at 10M keys the first touch of a node's mapped block took a quarter of LevelDB's read time on
// the transaction thread, and the copy costs less (benchmarks/README.md, levers). Open tables'
// index and filter blocks then live in the heap (about 19 bytes a key at 10M keys). A read past
// the end the file had when opened, which only a truncated file makes (LevelDB reads where the
// manifest says a table's blocks and footer are), is corruption, and so is a file shrunk since.
class table_file final : public leveldb::RandomAccessFile {
 public:
  table_file(std::string name, std::uint64_t size) : name_(std::move(name)), size_(size) {}
  table_file(const table_file&) = delete;
  table_file& operator=(const table_file&) = delete;
  ~table_file() override {
    if (fd_ < 0) return;
    (void)::close(fd_);
    kept_descriptors.fetch_sub(1);
  }

  // Keeps a descriptor of the file open for its reads, if the budget allows (take_descriptor).
  leveldb::Status keep_open() {
    if (!take_descriptor()) return leveldb::Status::OK();
    fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) return leveldb::Status::OK();
    const int e = errno;
    kept_descriptors.fetch_sub(1);
    return leveldb::Status::IOError(name_, std::strerror(e));
  }

  leveldb::Status Read(std::uint64_t offset, std::size_t n, leveldb::Slice* result, char* scratch) const override {
    *result = leveldb::Slice();
    if (offset > size_ || n > size_ - offset) return truncated(offset + n);
    const int fd = fd_ >= 0 ? fd_ : ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      return leveldb::Status::IOError(name_, std::string("open: ") + std::strerror(e));
    }
    std::size_t got = 0;
    int failure = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, scratch + got, n - got, static_cast<off_t>(offset + got));
      if (r > 0) {
        got += static_cast<std::size_t>(r);
      } else if (r == 0) {
        break;
      } else if (errno != EINTR) {
        failure = errno;
        break;
      }
    }
    if (fd != fd_) (void)::close(fd);
    if (failure != 0) return leveldb::Status::IOError(name_, std::string("pread: ") + std::strerror(failure));
    if (got < n) return truncated(offset + n);
    *result = leveldb::Slice(scratch, n);
    return leveldb::Status::OK();
  }

 private:
  [[nodiscard]] leveldb::Status truncated(std::uint64_t end) const {
    return leveldb::Status::Corruption(
        name_, "truncated: " + std::to_string(size_) + " bytes, a read up to byte " + std::to_string(end));
  }

  std::string name_;
  std::uint64_t size_;
  int fd_ = -1;  // none: each read opens the file
};

// LevelDB's own environment, but for table files (`.ldb`), which it writes smoothed and reads with
// pread, checked for truncation.
class smoothed_env final : public leveldb::EnvWrapper {
 public:
  smoothed_env() : EnvWrapper(leveldb::Env::Default()) {}
  leveldb::Status NewRandomAccessFile(const std::string& name, leveldb::RandomAccessFile** result) override {
    std::uint64_t size = 0;
    if (!name.ends_with(".ldb") || !target()->GetFileSize(name, &size).ok()) {
      return target()->NewRandomAccessFile(name, result);
    }
    auto file = std::make_unique<table_file>(name, size);  // before the descriptor, which it then owns
    leveldb::Status s = file->keep_open();
    *result = s.ok() ? file.release() : nullptr;
    return s;
  }
  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override {
    if (!name.ends_with(".ldb")) return target()->NewWritableFile(name, result);
    const int fd = ::open(name.c_str(), O_TRUNC | O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      *result = nullptr;
      return leveldb::Status::IOError(name, std::strerror(errno));
    }
    *result = new smoothed_table_file(name, fd);
    return leveldb::Status::OK();
  }
};

leveldb::Env* smoothed() {
  static auto* env = new smoothed_env();  // like Env::Default(), never destroyed
  return env;
}

// Whether `dir` (which has no CURRENT file) holds only what LevelDB leaves when creating a
// database fails before CURRENT is written, as on a full disk: its lock, its info logs, a
// manifest and the temporary file it writes CURRENT from. Creating the database there again
// loses nothing, while any other file may be someone else's.
bool holds_only_a_failed_creation(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool leftover = name == "LOCK" || name == "LOG" || name == "LOG.old" || name.starts_with("MANIFEST-") ||
                          name.ends_with(".dbtmp");
    if (!leftover) return false;
  }
  return !ec;
}

/// The largest write batch whose buffer a thread keeps for its next write. A large version comes
/// in pieces of 4 MiB of records (versioned_tree::write_leading_pieces), which with their keys
/// make batches of about 5 MiB: kept, so that a load's pieces reuse one buffer instead of each
/// growing a new one by doubling (45% of a 1M-key load's page faults).
constexpr std::size_t kept_batch_bytes = std::size_t{8} << 20;

class leveldb_store final : public node_store {
 public:
  leveldb_store(const std::string& path, const leveldb_options& o) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (exists && !fs::is_directory(path, ec)) {
      throw error(errc::not_a_database, "'" + path + "' is not a database directory (it is a file)");
    }
    const bool has_database = exists && fs::exists(fs::path(path) / "CURRENT", ec);
    if (exists && !has_database && !holds_only_a_failed_creation(path)) {
      throw error(errc::not_a_database, "'" + path + "' is a non-empty directory without a LevelDB database");
    }
    if (!has_database && !o.create_if_missing) {
      throw error(errc::not_a_database, "no database at '" + path + "'");
    }
    if (!exists) fs::create_directories(path, ec);  // LevelDB creates only the last component
    cache_.reset(leveldb::NewLRUCache(o.block_cache_bytes));
    leveldb::Options options;
    options.create_if_missing = o.create_if_missing;
    options.paranoid_checks = true;
    options.block_cache = cache_.get();
    if (o.bloom_bits_per_key > 0) {
      filter_.reset(leveldb::NewBloomFilterPolicy(o.bloom_bits_per_key));
      options.filter_policy = filter_.get();
    }
    options.write_buffer_size = o.write_buffer_bytes;
    options.compression = o.compression ? leveldb::kSnappyCompression : leveldb::kNoCompression;
    options.max_file_size = std::size_t{32} << 20;
    options.env = smoothed();
    leveldb::DB* db = nullptr;
    const leveldb::Status s = leveldb::DB::Open(options, path, &db);
    if (!s.ok()) fail(s, "open of '" + path + "'");
    db_.reset(db);
    // Reads check the CRC32C of the blocks they touch, but for node records: those carry their
    // own (and are checked against the hash their parent keeps), and checking their 4 KiB block
    // as well, in Debian's software CRC32C, took a tenth of the transaction thread at 10M keys.
    // A root record (nonce 0) has no checksum of its own.
    read_options_.verify_checksums = true;
    // Node reads leave LevelDB's block cache alone: the tree caches the nodes it decoded, so a
    // node's block is seldom read again soon, and filling the cache cost an insert and an eviction
    // a read (10M keys: 19.0-19.8 against 20.9-25.2 µs a transaction, four processes each).
    node_read_options_.fill_cache = false;
  }

  bool read_node(node_key key, std::string& out) const override {
    return read(key.nonce == 0 ? read_options_ : node_read_options_, detail::node_record_key(key), out);
  }

  bool read_meta(std::string_view name, std::string& out) const override {
    return read(read_options_, detail::meta_record_key(name), out);
  }

  void scan_meta(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    const std::string start = detail::meta_record_key(prefix);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      const std::string_view name(it->key().data() + 1, it->key().size() - 1);
      if (!fn(name, std::string_view(it->value().data(), it->value().size()))) break;
    }
    check_scan(*it);
  }

  void scan_nodes(std::int64_t first_version, std::int64_t last_version,
                  const std::function<bool(node_key)>& fn) const override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    node_key k;
    for (it->Seek(detail::version_start_key(first_version));
         it->Valid() && detail::parse_node_record_key(std::string_view(it->key().data(), it->key().size()), k) &&
         k.version <= last_version;
         it->Next()) {
      if (!fn(k)) break;
    }
    check_scan(*it);
  }

  // Any key at all, also one outside iavl's key space: another program's database is not empty.
  [[nodiscard]] bool empty() const override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    it->SeekToFirst();
    const bool empty = !it->Valid();
    check_scan(*it);
    return empty;
  }

  void write(const write_batch& batch, bool sync) override {
    // Each thread keeps its batch's buffer for its next write: a version's batch is megabytes,
    // and building it afresh grew it by copies, into memory the process had just mapped.
    thread_local std::optional<leveldb::WriteBatch> reused;
    if (!reused) reused.emplace();
    leveldb::WriteBatch& b = *reused;
    b.Clear();
    for (const auto& [k, v] : batch.put_nodes) b.Put(detail::node_record_key(k), leveldb::Slice(v.data(), v.size()));
    for (const auto& k : batch.delete_nodes) b.Delete(detail::node_record_key(k));
    for (const auto& [name, v] : batch.put_meta) b.Put(detail::meta_record_key(name), v);
    for (const auto& name : batch.delete_meta) b.Delete(detail::meta_record_key(name));
    leveldb::WriteOptions options;
    options.sync = sync;
    const leveldb::Status s = db_->Write(options, &b);
    if (b.ApproximateSize() > kept_batch_bytes) reused.reset();  // a load's large commits: not kept
    if (!s.ok()) fail(s, "write");
  }

  std::uint64_t size_bytes() const override {
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
      if (e.is_regular_file(ec)) total += e.file_size(ec);
    }
    return total;
  }

 private:
  bool read(const leveldb::ReadOptions& options, const std::string& key, std::string& out) const {
    const leveldb::Status s = db_->Get(options, key, &out);
    if (s.IsNotFound()) return false;
    if (!s.ok()) fail(s, "read");
    return true;
  }

  std::string path_;
  std::unique_ptr<leveldb::Cache> cache_;  // these two outlive db_ (declared first, destroyed last)
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
  leveldb::ReadOptions read_options_;
  leveldb::ReadOptions node_read_options_;
};

}  // namespace

std::shared_ptr<node_store> open_leveldb_store(const std::string& path, const leveldb_options& options) {
  return std::make_shared<leveldb_store>(path, options);
}

}  // namespace iavl
