#include "tests/harness/json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace constellation::testing {
namespace {

class JsonParser {
 public:
  explicit JsonParser(absl::string_view s) : s_(s) {}

  absl::StatusOr<std::map<std::string, JsonValue>> Object() {
    std::map<std::string, JsonValue> out;
    Space();
    if (!Eat('{')) return Error("expected '{'");
    Space();
    if (Eat('}')) return Finish(std::move(out));
    while (true) {
      Space();
      absl::StatusOr<std::string> key = String();
      if (!key.ok()) return key.status();
      Space();
      if (!Eat(':')) return Error("expected ':'");
      Space();
      absl::StatusOr<JsonValue> value = Value();
      if (!value.ok()) return value.status();
      if (!out.emplace(*key, *value).second) return Error(absl::StrCat("duplicate key \"", *key, "\""));
      Space();
      if (Eat(',')) continue;
      if (Eat('}')) return Finish(std::move(out));
      return Error("expected ',' or '}'");
    }
  }

 private:
  absl::StatusOr<std::map<std::string, JsonValue>> Finish(std::map<std::string, JsonValue> out) {
    Space();
    if (i_ != s_.size()) return Error("text after the object");
    return out;
  }
  absl::Status Error(absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(what, " at offset ", i_, " of: ", s_.substr(0, 300)));
  }
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatWord(absl::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  absl::StatusOr<JsonValue> Value() {
    JsonValue v;
    if (i_ < s_.size() && s_[i_] == '"') {
      absl::StatusOr<std::string> str = String();
      if (!str.ok()) return str.status();
      v.kind = JsonValue::kString;
      v.str = *std::move(str);
      return v;
    }
    if (EatWord("true") || EatWord("false")) {
      v.kind = JsonValue::kBool;
      v.boolean = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';  // "true", not "false"
      return v;
    }
    size_t start = i_;
    Eat('-');
    auto digits = [&] {
      size_t from = i_;
      while (i_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      return i_ > from;
    };
    bool whole = digits();
    bool fraction = Eat('.');
    if (fraction && !digits()) return Error("expected digits after '.'");
    absl::string_view text = s_.substr(start, i_ - start);
    if (!fraction) {
      // "-" alone, no digits and out-of-range integers fail here.
      if (!whole || !absl::SimpleAtoi(text, &v.number)) return Error("expected a string, number or boolean value");
      v.real = static_cast<double>(v.number);
    } else {
      if (!whole || !absl::SimpleAtod(text, &v.real)) return Error("expected a string, number or boolean value");
      v.number = static_cast<int64_t>(v.real);
    }
    v.kind = JsonValue::kNumber;
    return v;
  }
  // Four hex digits of a \u escape.
  bool Hex4(unsigned* code) {
    if (i_ + 4 > s_.size()) return false;
    *code = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_++];
      *code <<= 4;
      if (h >= '0' && h <= '9') {
        *code |= h - '0';
      } else if (h >= 'a' && h <= 'f') {
        *code |= h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        *code |= h - 'A' + 10;
      } else {
        return false;
      }
    }
    return true;
  }
  static void AppendUtf8(unsigned code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xe0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }
  absl::StatusOr<std::string> String() {
    if (!Eat('"')) return Error("expected a string");
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      switch (char e = s_[i_++]) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          unsigned code;
          if (!Hex4(&code)) return Error("bad \\u escape");
          AppendUtf8(code, &out);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  absl::string_view s_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view line) {
  return JsonParser(line).Object();
}

}  // namespace constellation::testing
