// Protobuf encoding of the ICS23 messages (cosmos/ics23 proofs.proto). Hand-written: five small
// messages with varint and length-delimited fields only.
//
// Each message is described once, by an emit() over an output that either counts bytes or
// writes them, so that the length prefix of a nested message and its bytes cannot disagree.
#include <string>

#include "iavl/detail/encoding.hpp"
#include "iavl/errors.hpp"
#include "iavl/proof.hpp"

namespace iavl::ics23 {

namespace {

constexpr int wire_varint = 0;
constexpr int wire_bytes = 2;

std::size_t uvarint_size(std::uint64_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// proto3 int32 and enum values travel as the 64-bit varint of their sign extension.
std::uint64_t enum_wire_value(std::int32_t v) { return static_cast<std::uint64_t>(static_cast<std::int64_t>(v)); }

template <class Out>
void emit(Out& out, const leaf_op& op) {
  out.varint_field(1, static_cast<std::int32_t>(op.hash));
  out.varint_field(2, static_cast<std::int32_t>(op.prehash_key));
  out.varint_field(3, static_cast<std::int32_t>(op.prehash_value));
  out.varint_field(4, static_cast<std::int32_t>(op.length));
  out.bytes_field(5, op.prefix);
}

template <class Out>
void emit(Out& out, const inner_op& op) {
  out.varint_field(1, static_cast<std::int32_t>(op.hash));
  out.bytes_field(2, op.prefix);
  out.bytes_field(3, op.suffix);
}

template <class Out>
void emit(Out& out, const existence_proof& p) {
  out.bytes_field(1, p.key);
  out.bytes_field(2, p.value);
  if (p.leaf) out.message_field(3, *p.leaf);
  for (const inner_op& op : p.path) out.message_field(4, op);
}

template <class Out>
void emit(Out& out, const non_existence_proof& p) {
  out.bytes_field(1, p.key);
  if (p.left) out.message_field(2, *p.left);
  if (p.right) out.message_field(3, *p.right);
}

template <class Out>
void emit(Out& out, const commitment_proof& p) {
  if (const auto* e = std::get_if<existence_proof>(&p.proof)) out.message_field(1, *e);
  if (const auto* n = std::get_if<non_existence_proof>(&p.proof)) out.message_field(2, *n);
}

// Proto3 leaves out scalars at their default (0, empty); message fields are written when set.
struct byte_counter {
  std::size_t size = 0;

  void varint_field(int, std::int32_t v) {
    if (v != 0) size += 1 + uvarint_size(enum_wire_value(v));
  }
  void bytes_field(int, std::string_view b) {
    if (!b.empty()) size += 1 + uvarint_size(b.size()) + b.size();
  }
  template <class Message>
  void message_field(int, const Message& m) {
    const std::size_t body = size_of(m);
    size += 1 + uvarint_size(body) + body;
  }
  template <class Message>
  static std::size_t size_of(const Message& m) {
    byte_counter c;
    emit(c, m);
    return c.size;
  }
};

struct byte_writer {
  std::string& out;

  void uvarint(std::uint64_t v) {
    std::uint8_t buf[detail::max_varint_size];
    out.append(reinterpret_cast<const char*>(buf), detail::put_uvarint(buf, v));
  }
  void tag(int field, int wire_type) { out.push_back(static_cast<char>(field << 3 | wire_type)); }
  void varint_field(int field, std::int32_t v) {
    if (v == 0) return;
    tag(field, wire_varint);
    uvarint(enum_wire_value(v));
  }
  void bytes_field(int field, std::string_view b) {
    if (b.empty()) return;
    tag(field, wire_bytes);
    uvarint(b.size());
    out.append(b);
  }
  template <class Message>
  void message_field(int field, const Message& m) {
    tag(field, wire_bytes);
    uvarint(byte_counter::size_of(m));
    emit(*this, m);
  }
};

// ---- decoding -----------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& what) { throw error(errc::invalid_argument, "ics23 proof: " + what); }

struct field {
  std::uint32_t number = 0;
  int wire_type = 0;
  std::uint64_t varint = 0;  // wire type 0
  std::string_view bytes;    // wire type 2
};

// Reads the fields of one message body in order.
class field_reader {
 public:
  field_reader(std::string_view body, const char* message) : body_(body), message_(message) {}

  bool next(field& f) {
    if (pos_ == body_.size()) return false;
    f = {};
    const std::uint64_t tag = read_uvarint("field tag");
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff) fail(std::string("invalid field number in ") + message_);
    f.number = static_cast<std::uint32_t>(tag >> 3);
    f.wire_type = static_cast<int>(tag & 7);
    if (f.wire_type == wire_varint) {
      f.varint = read_uvarint("varint field");
    } else if (f.wire_type == wire_bytes) {
      const std::uint64_t length = read_uvarint("length");
      if (length > body_.size() - pos_) fail(std::string("length-delimited field runs past the end of ") + message_);
      f.bytes = body_.substr(pos_, length);
      pos_ += length;
    } else {
      fail("field " + std::to_string(f.number) + " of " + message_ + " has unsupported wire type " +
           std::to_string(f.wire_type));
    }
    return true;
  }

 private:
  std::uint64_t read_uvarint(const char* what) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(body_.data()) + pos_;
    const auto* end = reinterpret_cast<const std::uint8_t*>(body_.data()) + body_.size();
    std::uint64_t v = 0;
    const std::size_t n = detail::get_uvarint(p, end, v);
    if (n == 0) fail(std::string("truncated or overlong ") + what + " in " + message_);
    pos_ += n;
    return v;
  }

  std::string_view body_;
  std::size_t pos_ = 0;
  const char* message_;
};

/// Calls on_field(f) for each field of a message body; on_field returns false for a field the
/// message does not have (or not with that wire type), which is an error.
template <class OnField>
void read_fields(std::string_view body, const char* message, OnField on_field) {
  field_reader r(body, message);
  for (field f; r.next(f);) {
    if (!on_field(f)) {
      fail("unexpected field " + std::to_string(f.number) + " (wire type " + std::to_string(f.wire_type) + ") in " +
           message);
    }
  }
}

std::int32_t as_int32(std::uint64_t wire) { return static_cast<std::int32_t>(static_cast<std::uint32_t>(wire)); }

leaf_op parse_leaf_op(std::string_view body) {
  leaf_op op;
  read_fields(body, "LeafOp", [&](const field& f) {
    if (f.number == 5) {
      op.prefix = f.bytes;
      return f.wire_type == wire_bytes;
    }
    const auto v = as_int32(f.varint);
    switch (f.number) {
      case 1: op.hash = static_cast<hash_op>(v); break;
      case 2: op.prehash_key = static_cast<hash_op>(v); break;
      case 3: op.prehash_value = static_cast<hash_op>(v); break;
      case 4: op.length = static_cast<length_op>(v); break;
      default: return false;
    }
    return f.wire_type == wire_varint;
  });
  return op;
}

inner_op parse_inner_op(std::string_view body) {
  inner_op op;
  read_fields(body, "InnerOp", [&](const field& f) {
    switch (f.number) {
      case 1: op.hash = static_cast<hash_op>(as_int32(f.varint)); return f.wire_type == wire_varint;
      case 2: op.prefix = f.bytes; return f.wire_type == wire_bytes;
      case 3: op.suffix = f.bytes; return f.wire_type == wire_bytes;
      default: return false;
    }
  });
  return op;
}

// The remaining messages have length-delimited fields only.

existence_proof parse_existence_proof(std::string_view body) {
  existence_proof p;
  read_fields(body, "ExistenceProof", [&](const field& f) {
    if (f.wire_type != wire_bytes) return false;
    switch (f.number) {
      case 1: p.key = f.bytes; return true;
      case 2: p.value = f.bytes; return true;
      case 3: p.leaf = parse_leaf_op(f.bytes); return true;
      case 4: p.path.push_back(parse_inner_op(f.bytes)); return true;
      default: return false;
    }
  });
  return p;
}

non_existence_proof parse_non_existence_proof(std::string_view body) {
  non_existence_proof p;
  read_fields(body, "NonExistenceProof", [&](const field& f) {
    if (f.wire_type != wire_bytes) return false;
    switch (f.number) {
      case 1: p.key = f.bytes; return true;
      case 2: p.left = parse_existence_proof(f.bytes); return true;
      case 3: p.right = parse_existence_proof(f.bytes); return true;
      default: return false;
    }
  });
  return p;
}

commitment_proof parse_commitment_proof(std::string_view body) {
  commitment_proof p;
  read_fields(body, "CommitmentProof", [&](const field& f) {
    if (f.wire_type != wire_bytes) return false;
    switch (f.number) {
      case 1: p.proof = parse_existence_proof(f.bytes); return true;
      case 2: p.proof = parse_non_existence_proof(f.bytes); return true;
      case 3: fail("batch proofs are not supported");
      case 4: fail("compressed batch proofs are not supported");
      case 5: fail("exclusion proofs are not supported");
      default: return false;
    }
  });
  return p;
}

}  // namespace

std::string encode(const commitment_proof& proof) {
  std::string out;
  out.reserve(byte_counter::size_of(proof));
  byte_writer w{out};
  emit(w, proof);
  return out;
}

commitment_proof decode(std::string_view bytes) {
  commitment_proof proof = parse_commitment_proof(bytes);
  // Re-encoding reproduces the input exactly when it was canonical; anything else (order,
  // repeats, explicit defaults, long varints) is a second byte form of some proof.
  if (encode(proof) != bytes) fail("not in canonical protobuf encoding");
  return proof;
}

}  // namespace iavl::ics23
