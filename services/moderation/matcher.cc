#include "services/moderation/matcher.h"

#include <hs.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/flat_bytes.h"

namespace qunzu::moderation {
namespace {

// A compiled regex set larger than this is a pathological pattern.
constexpr size_t kMaxRegexDatabaseBytes = 2 << 20;

constexpr unsigned kRegexFlags = HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_DOTALL | HS_FLAG_SOM_LEFTMOST;

// Counted repetitions are what make a regex slow to compile (each bound
// unrolls into automaton states); this refuses large ones before compiling.
constexpr int kMaxRepeatBound = 100;
constexpr int kMaxRepeatTotal = 150;

std::string CheckRepeats(absl::string_view pattern) {
  int total = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] != '{') continue;
    int bound = 0;
    bool digits = false;
    for (size_t j = i + 1; j < pattern.size() && pattern[j] != '}'; ++j) {
      if (pattern[j] >= '0' && pattern[j] <= '9') {
        bound = std::min(bound * 10 + (pattern[j] - '0'), 1000000);
        digits = true;
      } else if (pattern[j] == ',') {
        total += bound;
        bound = 0;
      } else {
        break;
      }
      if (bound > kMaxRepeatBound) {
        return absl::StrCat("a counted repetition above ", kMaxRepeatBound, " (pathological)");
      }
    }
    if (digits) total += bound;
    if (total > kMaxRepeatTotal) {
      return absl::StrCat("counted repetitions adding up to more than ", kMaxRepeatTotal,
                          " (pathological)");
    }
  }
  return "";
}

// The first bytes of a serialised rule set, and part of its cache key:
// change it whenever what the build reads or the layout changes.
constexpr absl::string_view kSerializedMagic = "qunzu-compiled-rules-3\n";

// A rule as the serialised set holds it; its pattern is in one string of
// them all.
struct StoredRule {
  uint64_t id;
  uint32_t pattern_length;
  int32_t category;
  uint32_t kind;
  uint32_t action;
};

// What must be the same for a serialised set to be used as it is: our
// format, Vectorscan's version, the CPU class the regexes were compiled
// for (and the records laid out for), and the normaliser's tables the
// literals were normalised with.
const std::string& HostClass() {
  static const std::string* const host = [] {
    auto* out = new std::string(kSerializedMagic);
    FlatWriter writer(out);
    writer.Bytes(hs_version());
    hs_platform_info_t platform{};
    if (hs_populate_platform(&platform) == HS_SUCCESS) {
      writer.Number(platform.tune);
      writer.Number(platform.cpu_features);
    }
    writer.Number(kRegexFlags);
    writer.Number(sizeof(void*));
    writer.Bytes(Normalizer::Get().Fingerprint());
    return out;
  }();
  return *host;
}

absl::Status RegexRejected(size_t rule_index, absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, "REGEX_REJECTED",
                   absl::StrCat("regex of rule ", rule_index, " rejected: ", why),
                   {{"rule_index", absl::StrCat(rule_index)}, {"why", std::string(why)}});
}

}  // namespace

CompiledRules::~CompiledRules() {
  if (prototype_ != nullptr) hs_free_scratch(prototype_);
  FreeDatabase();
}

hs_scratch_t* CompiledRules::ThreadScratch() const {
  struct Held {
    uint64_t serial = 0;
    hs_scratch_t* scratch = nullptr;
    ~Held() {
      if (scratch != nullptr) hs_free_scratch(scratch);
    }
  };
  thread_local Held held;
  if (held.serial == serial_ && held.scratch != nullptr) return held.scratch;
  if (held.scratch != nullptr) hs_free_scratch(held.scratch);
  held.scratch = nullptr;
  held.serial = 0;
  hs_scratch_t* scratch = nullptr;
  absl::MutexLock lock(&prototype_mu_);
  if (hs_clone_scratch(prototype_, &scratch) != HS_SUCCESS) return nullptr;
  held.scratch = scratch;
  held.serial = serial_;
  return scratch;
}

absl::Status CompiledRules::CheckRegex(absl::string_view pattern, size_t rule_index) {
  if (pattern.empty()) return RegexRejected(rule_index, "empty");
  if (pattern.size() > kMaxRegexLength) {
    return RegexRejected(rule_index, absl::StrCat("longer than ", kMaxRegexLength, " bytes"));
  }
  if (std::string why = CheckRepeats(pattern); !why.empty()) return RegexRejected(rule_index, why);
  const std::string expression(pattern);
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_expression_info(expression.c_str(), kRegexFlags, &info, &error) != HS_SUCCESS) {
    std::string why = error != nullptr ? error->message : "cannot be compiled";
    hs_free_compile_error(error);
    return RegexRejected(rule_index, why);
  }
  const bool matches_empty = info->min_width == 0;
  free(info);  // NOLINT(cppcoreguidelines-no-malloc): allocated by Vectorscan with malloc
  if (matches_empty) return RegexRejected(rule_index, "can match the empty string");
  hs_database_t* db = nullptr;
  if (hs_compile(expression.c_str(), kRegexFlags, HS_MODE_BLOCK, nullptr, &db, &error) !=
      HS_SUCCESS) {
    std::string why = error != nullptr ? error->message : "cannot be compiled";
    hs_free_compile_error(error);
    return RegexRejected(rule_index, why);
  }
  size_t size = 0;
  hs_database_size(db, &size);
  hs_free_database(db);
  if (size > kMaxRegexDatabaseBytes) {
    return RegexRejected(rule_index, absl::StrCat("compiles to ", size, " bytes (pathological)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const CompiledRules>> CompiledRules::Compile(
    std::vector<Rule> rules, CompiledRulesCache* cache, std::string annex) {
  std::shared_ptr<CompiledRules> compiled(new CompiledRules());
  compiled->rules_ = std::move(rules);
  compiled->annex_ = std::move(annex);
  RETURN_IF_ERROR(compiled->Build(cache));
  return std::shared_ptr<const CompiledRules>(std::move(compiled));
}

absl::StatusOr<std::shared_ptr<const CompiledRules>> CompiledRules::LoadCached(
    const std::string& key, CompiledRulesCache& cache) {
  std::shared_ptr<CompiledRules> loaded(new CompiledRules());
  loaded->cache_key_ = key;
  if (!loaded->LoadFromCache(cache)) return nullptr;
  RETURN_IF_ERROR(loaded->Finish());
  return std::shared_ptr<const CompiledRules>(std::move(loaded));
}

std::string CompiledRules::CacheKey() const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  &EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  std::string bytes;
  FlatWriter writer(&bytes);
  // Hashed a piece at a time: a million rules are not copied into one
  // string first.
  auto flush = [&] {
    EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
    bytes.clear();
  };
  writer.Bytes(HostClass());
  writer.Bytes(annex_);
  writer.Number(rules_.size());
  for (const Rule& rule : rules_) {
    writer.Number(rule.id);
    writer.Number(static_cast<uint64_t>(rule.kind));
    writer.Number(static_cast<uint64_t>(rule.category));
    writer.Number(static_cast<uint64_t>(rule.action));
    writer.Bytes(rule.pattern);
    if (bytes.size() >= 4096) flush();
  }
  flush();
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest.data(), &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

absl::StatusOr<std::string> CompiledRules::Serialize() const {
  char* regex_bytes = nullptr;
  size_t regex_length = 0;
  if (regex_db_ != nullptr &&
      hs_serialize_database(regex_db_, &regex_bytes, &regex_length) != HS_SUCCESS) {
    return MakeError(absl::StatusCode::kInternal, "RULE_SET_SERIALIZE_FAILED",
                     "hs_serialize_database failed");
  }
  size_t pattern_bytes = 0;
  for (const Rule& rule : rules_) pattern_bytes += rule.pattern.size();
  std::string out;
  // Written once, not grown a doubling at a time: at a million terms the
  // set is a hundred MiB.
  out.reserve(1024 + HostClass().size() + annex_.size() + pattern_bytes +
              rules_.size() * sizeof(StoredRule) + literal_hits_.size() * sizeof(LiteralHit) +
              literal_rules_.size() * 4 + regex_rules_.size() * 4 +
              check_chars_.size() * (16 + 4 * sizeof(NormalizedChar)) + literal_index_.FlatSize() +
              regex_length + 32);
  FlatWriter writer(&out);
  writer.Bytes(HostClass());
  writer.Bytes(cache_key_);  // the bytes say which rules they are
  writer.Bytes(annex_);
  std::vector<StoredRule> stored;
  stored.reserve(rules_.size());
  std::string patterns;
  patterns.reserve(pattern_bytes);
  for (const Rule& rule : rules_) {
    StoredRule r{};
    r.id = rule.id;
    r.pattern_length = static_cast<uint32_t>(rule.pattern.size());
    r.category = rule.category;
    r.kind = static_cast<uint32_t>(rule.kind);
    r.action = static_cast<uint32_t>(rule.action);
    stored.push_back(r);
    patterns += rule.pattern;
  }
  writer.Array(stored);
  writer.Bytes(patterns);
  writer.Array(literal_hits_);
  writer.Array(literal_rules_);
  writer.Array(regex_rules_);
  // In literal order: a hash map's order is not even the same in two maps
  // of one process.
  std::vector<uint32_t> checked;
  checked.reserve(check_chars_.size());
  for (const auto& entry : check_chars_) checked.push_back(entry.first);
  std::sort(checked.begin(), checked.end());
  writer.Number(checked.size());
  for (uint32_t literal : checked) {
    writer.Number(literal);
    writer.Array(check_chars_.at(literal));
  }
  literal_index_.AppendTo(writer);
  writer.Bytes(absl::string_view(regex_bytes, regex_length));
  free(regex_bytes);  // NOLINT(cppcoreguidelines-no-malloc): allocated by Vectorscan with malloc
  // A digest of the whole, so that damaged bytes are never deserialised.
  out += Sha256(out);
  return out;
}

bool CompiledRules::Deserialize(const std::string& bytes) {
  if (DeserializeAll(bytes)) return true;
  // Nothing of damaged bytes is kept.
  FreeDatabase();
  literal_hits_.clear();
  literal_rules_.clear();
  regex_rules_.clear();
  check_chars_.clear();
  literal_index_ = LiteralIndex();
  return false;
}

bool CompiledRules::DeserializeAll(const std::string& bytes) {
  constexpr size_t kDigestBytes = 32;
  absl::string_view all(bytes);
  if (all.size() < kDigestBytes ||
      Sha256(all.substr(0, all.size() - kDigestBytes)) != all.substr(all.size() - kDigestBytes)) {
    return false;
  }
  FlatReader reader(all.substr(0, all.size() - kDigestBytes));
  absl::string_view host;
  absl::string_view key;
  absl::string_view annex;
  if (!reader.Bytes(&host) || host != HostClass() || !reader.Bytes(&key) || key != cache_key_ ||
      !reader.Bytes(&annex)) {
    return false;
  }
  std::vector<StoredRule> stored;
  absl::string_view patterns;
  if (!reader.Array(&stored) || !reader.Bytes(&patterns)) return false;
  // Compile has the rules already (the key is their digest); LoadCached
  // takes them from here.
  const bool have_rules = !rules_.empty();
  if (have_rules && stored.size() != rules_.size()) return false;
  std::vector<Rule> rules(have_rules ? 0 : stored.size());
  size_t offset = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    const StoredRule& r = stored[i];
    if (r.pattern_length > patterns.size() - offset ||
        r.kind > static_cast<uint32_t>(RuleKind::kAllow) ||
        r.action > static_cast<uint32_t>(RuleAction::kHold)) {
      return false;
    }
    if (!have_rules) {
      rules[i].id = r.id;
      rules[i].kind = static_cast<RuleKind>(r.kind);
      rules[i].pattern.assign(patterns.data() + offset, r.pattern_length);
      rules[i].category = r.category;
      rules[i].action = static_cast<RuleAction>(r.action);
    }
    offset += r.pattern_length;
  }
  uint64_t checked = 0;
  if (offset != patterns.size() || !reader.Array(&literal_hits_) ||
      !reader.Array(&literal_rules_) || !reader.Array(&regex_rules_) || !reader.Number(&checked) ||
      checked > reader.left()) {
    return false;
  }
  for (uint64_t i = 0; i < checked; ++i) {
    uint32_t literal = 0;
    std::vector<NormalizedChar> chars;
    if (!reader.Number(&literal) || !reader.Array(&chars)) return false;
    check_chars_.emplace(literal, std::move(chars));
  }
  absl::string_view regexes;
  if (!literal_index_.ReadFrom(reader) || !reader.Bytes(&regexes) || reader.left() != 0 ||
      regexes.empty() != regex_rules_.empty()) {
    return false;
  }
  if (!have_rules) rules_ = std::move(rules);
  annex_ = std::string(annex);
  if (!Consistent()) return false;
  return regexes.empty() ||
         hs_deserialize_database(regexes.data(), regexes.size(), &regex_db_) == HS_SUCCESS;
}

bool CompiledRules::Consistent() const {
  for (const LiteralHit& hit : literal_hits_) {
    if (hit.rules_begin > hit.rules_end || hit.rules_end > literal_rules_.size()) return false;
  }
  for (uint32_t rule : literal_rules_) {
    if ((rule & ~kAllowRule) >= rules_.size()) return false;
  }
  for (uint32_t rule : regex_rules_) {
    if (rule >= rules_.size() || rules_[rule].kind != RuleKind::kRegex) return false;
  }
  for (const auto& [literal, chars] : check_chars_) {
    if (literal >= literal_hits_.size()) return false;
  }
  return literal_index_.size() == literal_hits_.size();
}

bool CompiledRules::LoadFromCache(CompiledRulesCache& cache) {
  absl::StatusOr<std::optional<std::string>> cached = cache.Load(cache_key_);
  if (!cached.ok()) {
    LogWarning("rule_cache_load_failed",
               {{"key", cache_key_}, {"error", cached.status().ToString()}});
  } else if (cached->has_value()) {
    from_cache_ = Deserialize(**cached);
    if (!from_cache_) LogWarning("rule_cache_unusable", {{"key", cache_key_}});
  }
  return from_cache_;
}

absl::StatusOr<std::shared_ptr<void>> CompiledRulesCache::ClaimCompile(const std::string&) {
  return std::make_shared<int>(0);
}

absl::Status CompiledRules::Build(CompiledRulesCache* cache) {
  cache_key_ = CacheKey();
  std::shared_ptr<void> claim;  // held until the built set is stored
  if (cache != nullptr && !LoadFromCache(*cache)) {
    absl::StatusOr<std::shared_ptr<void>> claimed = cache->ClaimCompile(cache_key_);
    if (!claimed.ok()) {
      LogWarning("rule_cache_claim_failed",
                 {{"key", cache_key_}, {"error", claimed.status().ToString()}});
    } else if (*claimed == nullptr) {
      return MakeError(absl::StatusCode::kUnavailable, kCompilingElsewhere,
                       "another replica is compiling these rules", {{"key", cache_key_}});
    } else {
      claim = *std::move(claimed);
      // It may have been stored between the miss and the claim.
      LoadFromCache(*cache);
    }
  }
  if (!from_cache_) {
    std::vector<unsigned> regex_ids;
    RETURN_IF_ERROR(BuildLiterals(&regex_ids));
    RETURN_IF_ERROR(CompileRegexes(regex_ids));
    if (cache != nullptr) {
      absl::StatusOr<std::string> bytes = Serialize();
      absl::Status stored = bytes.ok() ? cache->Store(cache_key_, *bytes) : bytes.status();
      if (!stored.ok()) {
        LogWarning("rule_cache_store_failed", {{"key", cache_key_}, {"error", stored.ToString()}});
      }
    }
  }
  return Finish();
}

absl::Status CompiledRules::BuildLiterals(std::vector<unsigned>* regex_ids) {
  const Normalizer& normalizer = Normalizer::Get();
  absl::flat_hash_map<std::string, uint32_t> literal_index;
  literal_index.reserve(rules_.size());
  std::vector<Literal> literals;
  literals.reserve(rules_.size());
  NormalizedText term;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& rule = rules_[i];
    if (rule.kind == RuleKind::kRegex) {
      RETURN_IF_ERROR(CheckRegex(rule.pattern, i));
      regex_ids->push_back(static_cast<unsigned>(regex_rules_.size()));
      regex_rules_.push_back(static_cast<uint32_t>(i));
      continue;
    }
    if (!normalizer.Normalize(rule.pattern, &term, "pattern").ok()) {
      // Named for the error only (the name costs an allocation per term).
      return normalizer.Normalize(rule.pattern, &term, absl::StrCat("rules[", i, "].pattern"));
    }
    if (term.text.empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "PATTERN_EMPTY",
                       absl::StrCat("rule ", i, " has nothing left after normalisation"),
                       {{"rule_index", absl::StrCat(i)}});
    }
    // Terms that normalise to the same text are one literal only when they
    // also need the same runs: "哈" and "哈哈" are both the text "哈".
    // (Normalised text holds no NUL: it is noise.)
    const std::vector<NormalizedChar>& chars = term.Chars();
    const bool needs_check = std::any_of(chars.begin(), chars.end(), [](const auto& c) {
      return c.run > 1 || (c.flags & kDigit) != 0;
    });
    std::string key = term.text;
    if (needs_check) {
      key.push_back('\0');
      for (const NormalizedChar& c : chars) {
        absl::StrAppend(&key, c.run, (c.flags & kDigit) != 0 ? "d," : ",");
      }
    }
    auto [it, inserted] = literal_index.try_emplace(std::move(key), literals.size());
    if (inserted) {
      Literal literal;
      literal.text = term.text;
      if (needs_check) literal.chars = chars;
      literal.needs_runs =
          std::any_of(chars.begin(), chars.end(), [](const auto& c) { return c.run > 1; });
      literal.hit_flags =
          static_cast<uint8_t>(((chars.front().flags & kWordChar) != 0 ? kLeftBoundary : 0) |
                               ((chars.back().flags & kWordChar) != 0 ? kRightBoundary : 0) |
                               (needs_check ? kCheckRuns : 0));
      literals.push_back(std::move(literal));
    }
    literals[it->second].rule_indexes.push_back(static_cast<uint32_t>(i));
  }
  for (const Literal& literal : literals) {
    LiteralHit hit;
    hit.rules_begin = static_cast<uint32_t>(literal_rules_.size());
    for (uint32_t rule_index : literal.rule_indexes) {
      const bool allow = rules_[rule_index].kind == RuleKind::kAllow;
      literal_rules_.push_back(rule_index | (allow ? kAllowRule : 0));
    }
    hit.rules_end = static_cast<uint32_t>(literal_rules_.size());
    hit.flags = literal.hit_flags;
    literal_hits_.push_back(hit);
  }
  std::vector<LiteralIndex::Term> terms;
  terms.reserve(literals.size());
  for (const Literal& literal : literals) terms.push_back({literal.text, literal.needs_runs});
  literal_index_.Build(terms);
  for (size_t id = 0; id < literals.size(); ++id) {
    if (!literals[id].chars.empty()) {
      check_chars_.emplace(static_cast<uint32_t>(id), std::move(literals[id].chars));
    }
  }
  return absl::OkStatus();
}

absl::Status CompiledRules::Finish() {
  rule_blocks_.reserve(rules_.size());
  for (const Rule& rule : rules_) rule_blocks_.push_back(rule.action == RuleAction::kBlock ? 1 : 0);
  if (regex_db_ != nullptr && hs_alloc_scratch(regex_db_, &prototype_) != HS_SUCCESS) {
    return MakeError(absl::StatusCode::kInternal, "RULE_SET_COMPILE_FAILED",
                     "hs_alloc_scratch failed");
  }
  static std::atomic<uint64_t> next_serial{1};
  serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void CompiledRules::FreeDatabase() {
  if (regex_db_ != nullptr) hs_free_database(regex_db_);
  regex_db_ = nullptr;
}

absl::Status CompiledRules::CompileRegexes(const std::vector<unsigned>& regex_ids) {
  hs_compile_error_t* error = nullptr;
  if (!regex_rules_.empty()) {
    std::vector<const char*> regex_patterns;
    std::vector<unsigned> regex_flags;
    for (uint32_t rule_index : regex_rules_) {
      regex_patterns.push_back(rules_[rule_index].pattern.c_str());
      regex_flags.push_back(kRegexFlags);
    }
    if (hs_compile_multi(regex_patterns.data(), regex_flags.data(), regex_ids.data(),
                         static_cast<unsigned>(regex_patterns.size()), HS_MODE_BLOCK, nullptr,
                         &regex_db_, &error) != HS_SUCCESS) {
      std::string why = error != nullptr ? error->message : "regex compile failed";
      const size_t index = error != nullptr && error->expression >= 0
                               ? regex_rules_[static_cast<size_t>(error->expression)]
                               : 0;
      hs_free_compile_error(error);
      return RegexRejected(index, why);
    }
  }
  return absl::OkStatus();
}

int CompiledRules::OnMatch(unsigned int id, unsigned long long from, unsigned long long to,
                           unsigned int /*flags*/, void* context) {
  auto* raw = static_cast<std::vector<RawMatch>*>(context);
  raw->push_back(RawMatch{id, static_cast<uint32_t>(from), static_cast<uint32_t>(to)});
  return 0;
}

bool CompiledRules::LiteralMatchHolds(uint32_t literal_id, const NormalizedText& text,
                                      uint32_t begin, uint32_t end) const {
  const LiteralHit& hit = literal_hits_[literal_id];
  if ((hit.flags & (kLeftBoundary | kRightBoundary | kCheckRuns)) == 0) return true;
  const auto& chars = text.CharsThrough(end);
  // A literal is whole UTF-8 characters, so begin and end are boundaries.
  const size_t first = text.CharAt(begin);
  if ((hit.flags & kLeftBoundary) != 0 && first > 0 && (chars[first].flags & kGapBefore) == 0 &&
      (chars[first - 1].flags & kWordChar) != 0) {
    return false;
  }
  if ((hit.flags & kRightBoundary) != 0 && end < text.text.size()) {
    const NormalizedChar& next = chars[text.CharAt(end)];
    if ((next.flags & kGapBefore) == 0 && (next.flags & kWordChar) != 0) return false;
  }
  if ((hit.flags & kCheckRuns) == 0) return true;
  const auto checked = check_chars_.find(literal_id);
  if (checked == check_chars_.end()) return false;  // kCheckRuns is set only with them
  const std::vector<NormalizedChar>& wanted = checked->second;
  if (first + wanted.size() > chars.size()) return false;
  for (size_t k = 0; k < wanted.size(); ++k) {
    const NormalizedChar& want = wanted[k];
    const NormalizedChar& got = chars[first + k];
    if ((want.flags & kDigit) != 0 ? got.run != want.run : got.run < want.run) return false;
  }
  return true;
}

absl::Status CompiledRules::Scan(const NormalizedText& text, bool explain, ScanResult* out) const {
  out->verdict = Verdict::kAllow;
  out->matches.clear();
  if (text.text.empty()) return absl::OkStatus();
  thread_local std::vector<RawMatch> raw;
  thread_local std::vector<RawMatch> allowed;
  raw.clear();
  allowed.clear();
  // Terms that need a run can match only in a text that has one.
  literal_index_.Find(text.text, text.starts(), text.units(), text.has_runs(), &raw);
  // What each hit reads next is asked for now, so that the misses overlap.
  for (const RawMatch& match : raw) __builtin_prefetch(&literal_hits_[match.id]);
  // Reported in order of end (and of begin at one end).
  std::sort(raw.begin(), raw.end(), [](const RawMatch& a, const RawMatch& b) {
    return a.end != b.end ? a.end < b.end : a.begin < b.begin;
  });
  const size_t literal_matches = raw.size();
  if (regex_db_ != nullptr) {
    hs_scratch_t* scratch = ThreadScratch();
    if (scratch == nullptr) {
      return MakeError(absl::StatusCode::kInternal, "SCAN_FAILED", "hs_clone_scratch failed");
    }
    if (hs_scan(regex_db_, text.text.data(), static_cast<unsigned>(text.text.size()), 0, scratch,
                &OnMatch, &raw) != HS_SUCCESS) {
      return MakeError(absl::StatusCode::kInternal, "SCAN_FAILED", "scan failed");
    }
  }
  if (raw.empty()) return absl::OkStatus();
  // A hit that needs a boundary or run check reads the map: built once, up
  // to the character after the last match (its right boundary), not past
  // it, and only then. Original spans need no map.
  uint32_t last_end = 0;
  for (const RawMatch& match : raw) last_end = std::max(last_end, match.end);
  bool mapped = false;
  auto add = [&](uint32_t rule_index, uint32_t begin, uint32_t end) {
    out->matches.push_back(
        RuleMatch{rule_index, begin, end, text.OriginalBegin(begin), text.OriginalEnd(end), 0});
  };
  for (size_t m = 0; m < raw.size(); ++m) {
    const RawMatch& match = raw[m];
    if (m >= literal_matches) {
      // Vectorscan reports every end of a regex match; the first is enough.
      const uint32_t rule_index = regex_rules_[match.id];
      const bool seen = std::any_of(out->matches.begin(), out->matches.end(),
                                    [&](const RuleMatch& r) { return r.rule_index == rule_index; });
      if (!seen) add(rule_index, match.begin, match.end);
      continue;
    }
    const LiteralHit& hit = literal_hits_[match.id];
    const uint32_t begin = match.begin;
    if (hit.flags != 0) {
      if (!mapped) (void)text.CharsThrough(last_end);
      mapped = true;
      if (!LiteralMatchHolds(match.id, text, begin, match.end)) continue;
    }
    for (uint32_t r = hit.rules_begin; r < hit.rules_end; ++r) {
      const uint32_t rule = literal_rules_[r];
      if ((rule & kAllowRule) != 0) {
        allowed.push_back(RawMatch{rule & ~kAllowRule, begin, match.end});
      } else {
        add(rule, begin, match.end);
      }
    }
  }
  size_t kept = 0;
  for (RuleMatch& match : out->matches) {
    for (const RawMatch& allow : allowed) {
      if (allow.begin <= match.normalized_begin && match.normalized_end <= allow.end) {
        match.suppressed_by = rules_[allow.id].id;
        break;
      }
    }
    if (match.suppressed_by == 0) {
      if (rule_blocks_[match.rule_index]) {
        out->verdict = Verdict::kBlock;
      } else if (out->verdict == Verdict::kAllow) {
        out->verdict = Verdict::kHold;
      }
    }
    if (explain || match.suppressed_by == 0) out->matches[kept++] = match;
  }
  out->matches.resize(kept);
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
