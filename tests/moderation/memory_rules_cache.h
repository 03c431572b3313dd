// A CompiledRulesCache in memory for tests: counts its calls and can fail.
#ifndef QUNZU_TESTS_MODERATION_MEMORY_RULES_CACHE_H_
#define QUNZU_TESTS_MODERATION_MEMORY_RULES_CACHE_H_

#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "services/moderation/matcher.h"

namespace qunzu::moderation {

class MemoryRulesCache : public CompiledRulesCache {
 public:
  absl::StatusOr<std::optional<std::string>> Load(const std::string& key) override {
    ++loads;
    if (failing) return MakeError(absl::StatusCode::kUnavailable, "TEST_CACHE_DOWN", "down");
    auto it = bytes.find(key);
    if (it == bytes.end()) return std::nullopt;
    return it->second;
  }
  absl::Status Store(const std::string& key, const std::string& value) override {
    ++stores;
    if (failing) return MakeError(absl::StatusCode::kUnavailable, "TEST_CACHE_DOWN", "down");
    bytes[key] = value;
    return absl::OkStatus();
  }
  std::map<std::string, std::string> bytes;
  int loads = 0;
  int stores = 0;
  bool failing = false;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_TESTS_MODERATION_MEMORY_RULES_CACHE_H_
