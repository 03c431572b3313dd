#include "services/qunzuctl/render.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "services/qunzuctl/field_setter.h"

namespace qunzu::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr size_t kMaxDefaultColumns = 8;

// Terminal columns of UTF-8 text: East Asian wide characters take two.
size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    int length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t code = length == 1 ? c : (c & (0x3F >> (length - 1)));
    for (int k = 1; k < length && i + k < text.size(); ++k) {
      code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    const bool wide = (code >= 0x1100 && code <= 0x115F) || (code >= 0x2E80 && code <= 0xA4CF) ||
                      (code >= 0xAC00 && code <= 0xD7A3) || (code >= 0xF900 && code <= 0xFAFF) ||
                      (code >= 0xFE30 && code <= 0xFE4F) || (code >= 0xFF00 && code <= 0xFF60) ||
                      (code >= 0xFFE0 && code <= 0xFFE6) || code >= 0x20000;
    width += wide ? 2 : 1;
    i += static_cast<size_t>(length);
  }
  return width;
}

bool IsWellKnownScalar(const FieldDescriptor& field) {
  if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return true;
  const std::string& type = field.message_type()->full_name();
  return type == "google.protobuf.Timestamp" || type == "google.protobuf.Duration";
}

std::string FormatWellKnown(const Message& value) {
  const auto* d = value.GetDescriptor();
  const Reflection& r = *value.GetReflection();
  int64_t seconds = r.GetInt64(value, d->FindFieldByName("seconds"));
  int32_t nanos = r.GetInt32(value, d->FindFieldByName("nanos"));
  if (d->full_name() == "google.protobuf.Timestamp") {
    // Some services send the epoch for "never" (muted_until of a member
    // never muted); it reads as unset.
    if (seconds == 0 && nanos == 0) return "";
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(seconds),
                            absl::UTCTimeZone());
  }
  return absl::FormatDuration(absl::Seconds(seconds) + absl::Nanoseconds(nanos));
}

std::string FormatOne(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& r = *message.GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r.GetRepeatedInt32(message, &field, index)
                              : r.GetInt32(message, &field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r.GetRepeatedInt64(message, &field, index)
                              : r.GetInt64(message, &field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r.GetRepeatedUInt32(message, &field, index)
                              : r.GetUInt32(message, &field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r.GetRepeatedUInt64(message, &field, index)
                              : r.GetUInt64(message, &field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r.GetRepeatedDouble(message, &field, index)
                              : r.GetDouble(message, &field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r.GetRepeatedFloat(message, &field, index)
                              : r.GetFloat(message, &field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field))
                 ? "true"
                 : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return ShortEnumName(*field.enum_type(), rep ? r.GetRepeatedEnumValue(message, &field, index)
                                                   : r.GetEnumValue(message, &field));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value =
          rep ? r.GetRepeatedString(message, &field, index) : r.GetString(message, &field);
      if (field.type() == FieldDescriptor::TYPE_BYTES) return absl::BytesToHexString(value);
      return absl::StrReplaceAll(value, {{"\n", "\\n"}, {"\t", " "}});
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& value =
          rep ? r.GetRepeatedMessage(message, &field, index) : r.GetMessage(message, &field);
      if (IsWellKnownScalar(field)) return FormatWellKnown(value);
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(value, &json, options);
      return json;
    }
  }
  return "";
}

bool HasValue(const Message& message, const FieldDescriptor& field) {
  const Reflection& r = *message.GetReflection();
  return field.is_repeated() ? r.FieldSize(message, &field) > 0 : r.HasField(message, &field);
}

}  // namespace

std::string FormatPath(const Message& message, absl::string_view path) {
  const Message* current = &message;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr) return "";
    // A plain scalar shows its value even when it is the default (leaf 0).
    const bool scalar =
        !field->is_repeated() && field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
    if (!scalar && !HasValue(*current, *field)) return "";
    if (i + 1 == parts.size()) return FormatField(*current, *field);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) return "";
    current = &current->GetReflection()->GetMessage(*current, field);
  }
  return "";
}

namespace {

void RenderLines(const Message& message, const std::string& indent, std::ostream& out) {
  const auto* d = message.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor& field = *d->field(i);
    if (!HasValue(message, field)) continue;
    if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || IsWellKnownScalar(field)) {
      std::string value = FormatField(message, field);
      if (!value.empty() || field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        out << indent << field.name() << ": " << value << "\n";
      }
      continue;
    }
    const Reflection& r = *message.GetReflection();
    if (!field.is_repeated()) {
      out << indent << field.name() << ":\n";
      RenderLines(r.GetMessage(message, &field), indent + "  ", out);
      continue;
    }
    for (int j = 0; j < r.FieldSize(message, &field); ++j) {
      out << indent << field.name() << "[" << j << "]:\n";
      RenderLines(r.GetRepeatedMessage(message, &field, j), indent + "  ", out);
    }
  }
}

std::vector<std::string> DefaultColumns(const Message& message, const FieldDescriptor& list) {
  const Reflection& r = *message.GetReflection();
  const auto* element = list.message_type();
  std::vector<std::string> columns;
  for (int i = 0; i < element->field_count() && columns.size() < kMaxDefaultColumns; ++i) {
    const FieldDescriptor& field = *element->field(i);
    if (field.is_repeated() || !IsWellKnownScalar(field) ||
        field.type() == FieldDescriptor::TYPE_BYTES) {
      continue;
    }
    for (int row = 0; row < r.FieldSize(message, &list); ++row) {
      if (HasValue(r.GetRepeatedMessage(message, &list, row), field)) {
        columns.push_back(field.name());
        break;
      }
    }
  }
  return columns;
}

void RenderList(const Message& message, const FieldDescriptor& list,
                const std::vector<std::string>& wanted, std::ostream& out) {
  const Reflection& r = *message.GetReflection();
  std::vector<std::string> columns = wanted.empty() ? DefaultColumns(message, list) : wanted;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  header.reserve(columns.size());
  for (const std::string& column : columns) {
    header.push_back(absl::AsciiStrToUpper(column));
  }
  rows.push_back(header);
  for (int i = 0; i < r.FieldSize(message, &list); ++i) {
    std::vector<std::string> row;
    row.reserve(columns.size());
    for (const std::string& column : columns) {
      row.push_back(FormatPath(r.GetRepeatedMessage(message, &list, i), column));
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(columns.size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      absl::StrAppend(&line, row[c]);
      if (c + 1 < row.size()) line.append(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    out << line << "\n";
  }
  if (rows.size() == 1) out << "(no " << list.name() << ")\n";
}

}  // namespace

absl::Status RenderJson(const Message& message, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
  return absl::OkStatus();
}

std::string FormatField(const Message& message, const FieldDescriptor& field) {
  if (!field.is_repeated()) return FormatOne(message, field, 0);
  std::vector<std::string> parts;
  parts.reserve(static_cast<size_t>(message.GetReflection()->FieldSize(message, &field)));
  for (int i = 0; i < message.GetReflection()->FieldSize(message, &field); ++i) {
    parts.push_back(FormatOne(message, field, i));
  }
  return absl::StrJoin(parts, ",");
}

void RenderTable(const Message& message, const TableOptions& options, std::ostream& out) {
  const auto* d = message.GetDescriptor();
  if (!options.raw_field.empty()) {
    if (const FieldDescriptor* raw = d->FindFieldByName(options.raw_field)) {
      std::string content = message.GetReflection()->GetString(message, raw);
      out << content;
      if (content.empty() || content.back() != '\n') out << "\n";
      return;
    }
  }
  const FieldDescriptor* list = nullptr;
  int lists = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor& field = *d->field(i);
    if (field.is_repeated() && field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !field.is_map()) {
      list = &field;
      ++lists;
    }
  }
  if (lists != 1 || (!options.columns.empty() && list == nullptr)) {
    RenderLines(message, "", out);
    return;
  }
  RenderList(message, *list, options.columns, out);
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor& field = *d->field(i);
    if (&field == list || !HasValue(message, field)) continue;
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !IsWellKnownScalar(field)) {
      out << field.name() << ":\n";
      RenderLines(message.GetReflection()->GetMessage(message, &field), "  ", out);
    } else {
      out << field.name() << ": " << FormatField(message, field) << "\n";
    }
  }
}

}  // namespace qunzu::ctl
