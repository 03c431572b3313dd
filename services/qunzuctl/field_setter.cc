#include "services/qunzuctl/field_setter.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace qunzu::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Bad(absl::string_view path, absl::string_view problem) {
  return InvalidField(FlagName(path), problem);
}

std::string EnumPrefix(const EnumDescriptor& type) {
  std::string prefix;
  for (char c : type.name()) {
    if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return prefix + "_";
}

std::string FieldNames(const Descriptor& type) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(type.field_count()));
  for (int i = 0; i < type.field_count(); ++i) names.push_back(FlagName(type.field(i)->name()));
  return absl::StrJoin(names, " ");
}

absl::StatusOr<absl::Time> ParseTimeValue(absl::string_view text, absl::Time now) {
  if (text == "now") return now;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    absl::StatusOr<absl::Duration> offset = ParseDurationWithDays(text.substr(1));
    if (!offset.ok()) return offset.status();
    return text[0] == '+' ? now + *offset : now - *offset;
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(error);
  }
  return time;
}

absl::Status SetEnum(Message* message, const FieldDescriptor& field, absl::string_view path,
                     absl::string_view text) {
  const EnumDescriptor& type = *field.enum_type();
  std::string upper = absl::AsciiStrToUpper(text);
  const google::protobuf::EnumValueDescriptor* value = type.FindValueByName(upper);
  if (value == nullptr) value = type.FindValueByName(EnumPrefix(type) + upper);
  int number = 0;
  if (value == nullptr && absl::SimpleAtoi(text, &number)) value = type.FindValueByNumber(number);
  if (value == nullptr) {
    return Bad(path, absl::StrCat("\"", text, "\" is not a ", type.name(), "; one of ",
                                  absl::StrJoin(ShortEnumNames(type), ", ")));
  }
  const Reflection& r = *message->GetReflection();
  if (field.is_repeated()) {
    r.AddEnumValue(message, &field, value->number());
  } else {
    r.SetEnumValue(message, &field, value->number());
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> ParseInteger(absl::string_view path, absl::string_view text,
                               absl::string_view what) {
  T value{};
  if (!absl::SimpleAtoi(text, &value)) {
    return Bad(path, absl::StrCat("\"", text, "\" is not ", what));
  }
  return value;
}

absl::Status SetMessageValue(Message* message, const FieldDescriptor& field, absl::string_view path,
                             absl::string_view text, absl::Time now) {
  const Reflection& r = *message->GetReflection();
  Message* target =
      field.is_repeated() ? r.AddMessage(message, &field) : r.MutableMessage(message, &field);
  const std::string& type = field.message_type()->full_name();
  if (type == "google.protobuf.Timestamp") {
    absl::StatusOr<absl::Time> time = ParseTimeValue(text, now);
    if (!time.ok()) {
      return Bad(path, absl::StrCat("\"", text,
                                    "\" is not a time: RFC 3339 (2026-01-31T08:00:00Z), now, "
                                    "or +DURATION / -DURATION from now (+24h, -7d)"));
    }
    const Descriptor& d = *target->GetDescriptor();
    int64_t micros = absl::ToUnixMicros(*time);
    target->GetReflection()->SetInt64(target, d.FindFieldByName("seconds"),
                                      micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
    target->GetReflection()->SetInt32(
        target, d.FindFieldByName("nanos"),
        static_cast<int32_t>(((micros % 1000000) + 1000000) % 1000000 * 1000));
    return absl::OkStatus();
  }
  if (type == "google.protobuf.Duration") {
    absl::StatusOr<absl::Duration> duration = ParseDurationWithDays(text);
    if (!duration.ok() || *duration == absl::InfiniteDuration()) {
      return Bad(path, absl::StrCat("\"", text, "\" is not a duration (90s, 1h30m, 7d)"));
    }
    const Descriptor& d = *target->GetDescriptor();
    int64_t nanos = absl::ToInt64Nanoseconds(*duration);
    target->GetReflection()->SetInt64(target, d.FindFieldByName("seconds"), nanos / 1000000000);
    target->GetReflection()->SetInt32(target, d.FindFieldByName("nanos"),
                                      static_cast<int32_t>(nanos % 1000000000));
    return absl::OkStatus();
  }
  google::protobuf::util::JsonParseOptions options;
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(text), target, options);
  if (!parsed.ok()) {
    return Bad(path, absl::StrCat("expected a ", field.message_type()->name(),
                                  " as protobuf JSON (fields: ", FieldNames(*field.message_type()),
                                  "): ", std::string(parsed.message())));
  }
  return absl::OkStatus();
}

absl::Status SetOne(Message* message, const FieldDescriptor& field, absl::string_view path,
                    absl::string_view text, absl::Time now) {
  const Reflection& r = *message->GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      ASSIGN_OR_RETURN(int32_t v, ParseInteger<int32_t>(path, text, "an integer"));
      rep ? r.AddInt32(message, &field, v) : r.SetInt32(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      ASSIGN_OR_RETURN(int64_t v, ParseInteger<int64_t>(path, text, "an integer"));
      rep ? r.AddInt64(message, &field, v) : r.SetInt64(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      ASSIGN_OR_RETURN(uint32_t v,
                       ParseInteger<uint32_t>(path, text, "an unsigned integer (0..4294967295)"));
      rep ? r.AddUInt32(message, &field, v) : r.SetUInt32(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      if (absl::StartsWith(text, "-")) return Bad(path, absl::StrCat("\"", text, "\" is negative"));
      ASSIGN_OR_RETURN(uint64_t v, ParseInteger<uint64_t>(path, text, "an unsigned integer"));
      rep ? r.AddUInt64(message, &field, v) : r.SetUInt64(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v = 0;
      if (!absl::SimpleAtod(text, &v))
        return Bad(path, absl::StrCat("\"", text, "\" is not a number"));
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r.AddDouble(message, &field, v) : r.SetDouble(message, &field, v);
      } else {
        auto f = static_cast<float>(v);
        rep ? r.AddFloat(message, &field, f) : r.SetFloat(message, &field, f);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) {
        return Bad(path, absl::StrCat("\"", text, "\" is not a boolean (true or false)"));
      }
      rep ? r.AddBool(message, &field, v) : r.SetBool(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM:
      return SetEnum(message, field, path, text);
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v(text);
      if (field.type() == FieldDescriptor::TYPE_BYTES) {
        if (absl::ConsumePrefix(&text, "base64:")) {
          if (!absl::Base64Unescape(text, &v)) return Bad(path, "invalid base64");
        } else {
          bool hex = text.size() % 2 == 0;
          for (char c : text) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
          if (!hex) return Bad(path, "bytes are given in hex, or as base64:...");
          v = absl::HexStringToBytes(text);
        }
      }
      rep ? r.AddString(message, &field, v) : r.SetString(message, &field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return SetMessageValue(message, field, path, text, now);
  }
  return Bad(path, "unsupported field type");
}

}  // namespace

std::string FlagName(absl::string_view field_path) {
  return absl::StrCat("--", absl::StrReplaceAll(field_path, {{"_", "-"}}));
}

absl::StatusOr<absl::Duration> ParseDurationWithDays(absl::string_view text) {
  absl::Duration duration;
  if (absl::ParseDuration(text, &duration)) return duration;
  int64_t days = 0;
  if (absl::ConsumeSuffix(&text, "d") && absl::SimpleAtoi(text, &days) && days >= 0) {
    return absl::Hours(24 * days);
  }
  return absl::InvalidArgumentError("not a duration");
}

std::vector<std::string> ShortEnumNames(const EnumDescriptor& type) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(type.value_count()));
  for (int i = 0; i < type.value_count(); ++i) {
    names.push_back(ShortEnumName(type, type.value(i)->number()));
  }
  return names;
}

std::string ShortEnumName(const EnumDescriptor& type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type.FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  absl::string_view name = value->name();
  absl::ConsumePrefix(&name, EnumPrefix(type));
  return std::string(name);
}

absl::StatusOr<FieldPath> ResolveFieldPath(const Message& message, absl::string_view path) {
  FieldPath out;
  const Descriptor* type = message.GetDescriptor();
  std::vector<std::string> segments = absl::StrSplit(path, '.');
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string name = absl::StrReplaceAll(segments[i], {{"-", "_"}});
    const FieldDescriptor* field = type == nullptr ? nullptr : type->FindFieldByName(name);
    if (field == nullptr) {
      return Bad(path, absl::StrCat("unknown flag: ", type->name(), " has no field \"", name,
                                    "\"; its fields: ", FieldNames(*type)));
    }
    out.fields.push_back(field);
    if (i + 1 < segments.size()) {
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        return Bad(path, absl::StrCat(name, " is not a message"));
      }
      if (field->is_repeated()) {
        return Bad(path, absl::StrCat(name, " is a list of messages: give each as JSON, ",
                                      FlagName(name), " '{...}'"));
      }
      type = field->message_type();
    }
  }
  return out;
}

absl::Status SetFieldFromText(Message* message, absl::string_view path, absl::string_view text,
                              absl::Time now) {
  ASSIGN_OR_RETURN(FieldPath resolved, ResolveFieldPath(*message, path));
  Message* target = message;
  for (size_t i = 0; i + 1 < resolved.fields.size(); ++i) {
    target = target->GetReflection()->MutableMessage(target, resolved.fields[i]);
  }
  const FieldDescriptor& leaf = *resolved.leaf();
  const bool split = leaf.is_repeated() && leaf.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
                     leaf.cpp_type() != FieldDescriptor::CPPTYPE_STRING;
  if (!split) return SetOne(target, leaf, path, text, now);
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    RETURN_IF_ERROR(SetOne(target, leaf, path, absl::StripAsciiWhitespace(part), now));
  }
  return absl::OkStatus();
}

bool FieldIsSet(const Message& message, absl::string_view path) {
  absl::StatusOr<FieldPath> resolved = ResolveFieldPath(message, path);
  if (!resolved.ok()) return false;
  const Message* target = &message;
  for (size_t i = 0; i + 1 < resolved->fields.size(); ++i) {
    if (!target->GetReflection()->HasField(*target, resolved->fields[i])) return false;
    target = &target->GetReflection()->GetMessage(*target, resolved->fields[i]);
  }
  const FieldDescriptor& leaf = *resolved->leaf();
  const Reflection& r = *target->GetReflection();
  if (leaf.is_repeated()) return r.FieldSize(*target, &leaf) > 0;
  return r.HasField(*target, &leaf);
}

}  // namespace qunzu::ctl
