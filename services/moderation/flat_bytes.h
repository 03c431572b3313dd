// The flat encoding of a built rule set (matcher.h: what the compiled-set
// cache holds): numbers, strings and arrays of plain records, written as
// the host lays them out. Only a host of the same CPU class reads them (the
// entry records it, and a reader of another class rebuilds instead), so
// loading is a copy of each array, not a parse.
#ifndef QUNZU_SERVICES_MODERATION_FLAT_BYTES_H_
#define QUNZU_SERVICES_MODERATION_FLAT_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace qunzu::moderation {

class FlatWriter {
 public:
  explicit FlatWriter(std::string* out) : out_(*out) {}

  void Number(uint64_t value) { Raw(&value, sizeof value); }
  void Bytes(absl::string_view bytes) {
    Number(bytes.size());
    out_.append(bytes.data(), bytes.size());
  }
  // T without padding: the same values always give the same bytes.
  template <typename T>
  void Array(const std::vector<T>& values) {
    static_assert(std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T>);
    Number(values.size());
    Raw(values.data(), values.size() * sizeof(T));
  }

 private:
  void Raw(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }
  std::string& out_;
};

// Every read returns false, and reads nothing more, once the bytes run out
// or a length is implausible: damaged bytes never allocate more than they
// could hold.
class FlatReader {
 public:
  explicit FlatReader(absl::string_view in) : in_(in) {}

  bool Number(uint64_t* value) { return Raw(value, sizeof *value); }
  template <typename T>
  bool Number(T* value) {
    uint64_t wide = 0;
    if (!Number(&wide) || static_cast<uint64_t>(static_cast<T>(wide)) != wide) return false;
    *value = static_cast<T>(wide);
    return true;
  }
  bool Bytes(absl::string_view* bytes) {
    uint64_t size = 0;
    if (!Number(&size) || size > in_.size()) return false;
    *bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }
  bool Bytes(std::string* bytes) {
    absl::string_view view;
    if (!Bytes(&view)) return false;
    bytes->assign(view.data(), view.size());
    return true;
  }
  template <typename T>
  bool Array(std::vector<T>* values) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t count = 0;
    if (!Number(&count) || count > in_.size() / sizeof(T)) return false;
    values->resize(count);
    return Raw(values->data(), count * sizeof(T));
  }
  size_t left() const { return in_.size(); }

 private:
  bool Raw(void* data, size_t size) {
    if (in_.size() < size) return false;
    if (size > 0) std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }
  absl::string_view in_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_FLAT_BYTES_H_
