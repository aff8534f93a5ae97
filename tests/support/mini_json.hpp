// A minimal JSON reader for the known-answer vector files (objects, arrays, strings without
// escapes beyond \" and \\, integers, true/false/null). Test support only.
#pragma once

#include <cctype>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace test_json {

struct value {
  enum kind_t { null, boolean, number, string, array, object } kind = null;
  bool b = false;
  long long num = 0;
  std::string str;
  std::vector<value> items;
  std::vector<std::pair<std::string, value>> fields;

  const value& operator[](const std::string& name) const {
    for (const auto& [k, v] : fields) {
      if (k == name) return v;
    }
    throw std::runtime_error("json: no field " + name);
  }
  bool has(const std::string& name) const {
    for (const auto& [k, v] : fields) {
      if (k == name) return true;
    }
    return false;
  }
};

class parser {
 public:
  explicit parser(const std::string& text) : s_(text) {}
  value parse() {
    value v = parse_value();
    skip();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string("json: ") + what); }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char peek() {
    skip();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail("unexpected character");
    ++i_;
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\') ++i_;
      out += s_[i_++];
    }
    expect('"');
    return out;
  }
  value parse_value() {
    value v;
    const char c = peek();
    if (c == '{') {
      v.kind = value::object;
      ++i_;
      if (peek() == '}') return ++i_, v;
      for (;;) {
        std::string name = parse_string();
        expect(':');
        v.fields.emplace_back(std::move(name), parse_value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = value::array;
      ++i_;
      if (peek() == ']') return ++i_, v;
      for (;;) {
        v.items.push_back(parse_value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = value::string;
      v.str = parse_string();
      return v;
    }
    for (const char* word : {"true", "false", "null"}) {
      if (s_.compare(i_, std::char_traits<char>::length(word), word) == 0) {
        i_ += std::char_traits<char>::length(word);
        v.kind = word[0] == 'n' ? value::null : value::boolean;
        v.b = word[0] == 't';
        return v;
      }
    }
    std::size_t used = 0;
    v.kind = value::number;
    v.num = std::stoll(s_.substr(i_), &used);
    i_ += used;
    return v;
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

}  // namespace test_json
