// The content matcher (R10.1): a compiled, immutable set of rules — literal
// terms, a few regexes, and allow terms — over the normalised text
// (normalizer.h): literal and allow terms with a LiteralIndex
// (literal_index.h), regexes with Vectorscan. Literal terms go through the
// same normaliser as the text, so one term catches its disguised forms.
//
// A term that starts (ends) with a letter or digit of an alphabetic script
// matches only at a word boundary there: "ass" does not match in "class".
// Runs of a character collapse in both the term and the text, and a match
// needs at least the term's run length of every letter (exactly that of
// every digit): "fuuuck" matches "fuck", "as" does not match "ass", "1000"
// does not match "100". A blocking match that lies inside an allow match
// is suppressed ("assessment" allowed suppresses "ass"). Regexes run on the
// normalised text, without boundary or run checks.
//
// A CompiledRules is immutable and thread-safe; share it by shared_ptr and
// swap in a new one to change the rules.
#ifndef QUNZU_SERVICES_MODERATION_MATCHER_H_
#define QUNZU_SERVICES_MODERATION_MATCHER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/moderation/literal_index.h"
#include "services/moderation/normalizer.h"

struct hs_database;
struct hs_scratch;

namespace qunzu::moderation {

enum class RuleKind { kLiteral, kRegex, kAllow };
enum class RuleAction { kBlock, kHold };
enum class Verdict { kAllow, kBlock, kHold };

struct Rule {
  uint64_t id = 0;
  RuleKind kind = RuleKind::kLiteral;
  std::string pattern;
  // A qunzu.moderation.v1.ContentCategory value; unused for allow rules.
  int category = 0;
  RuleAction action = RuleAction::kBlock;
};

// One rule matching, in normalised and original byte offsets.
struct RuleMatch {
  // Index into CompiledRules::rules().
  uint32_t rule_index = 0;
  uint32_t normalized_begin = 0;
  uint32_t normalized_end = 0;
  uint32_t original_begin = 0;
  uint32_t original_end = 0;
  // The id of the allow rule that suppressed this match; 0 when it stands.
  uint64_t suppressed_by = 0;
};

struct ScanResult {
  Verdict verdict = Verdict::kAllow;
  // Blocking and holding matches, in order of end offset; suppressed ones
  // only when the scan was asked to explain.
  std::vector<RuleMatch> matches;
};

// Where built rule sets are kept for other replicas and later starts: the
// whole built set (rules, literal index, compiled regexes, the caller's
// annex) in its flat encoding, keyed by a digest of everything the build
// reads (the rules as given, the annex, and the host class: our format,
// the Vectorscan version, the CPU class and the normaliser's tables). A
// replica that finds its set there copies it in instead of normalising a
// million terms and compiling the regexes. A cache that fails or holds
// damaged bytes only costs the build.
class CompiledRulesCache {
 public:
  virtual ~CompiledRulesCache() = default;
  // The bytes stored under key; nullopt when there are none.
  virtual absl::StatusOr<std::optional<std::string>> Load(const std::string& key) = 0;
  // Keeps bytes under key (a second Store of the same key may be ignored).
  virtual absl::Status Store(const std::string& key, const std::string& bytes) = 0;
  // Asked after a miss, before compiling: a token that lets this replica
  // compile the set (held until the set is stored), or null while another
  // replica compiles it — this one then waits for the cache instead of
  // spending the same compile's time and memory a second time.
  virtual absl::StatusOr<std::shared_ptr<void>> ClaimCompile(const std::string& key);
};

// The reason of CompiledRules::Compile's error while another replica holds
// the cache's claim on the same rules: wait and ask again, not a failure.
inline constexpr char kCompilingElsewhere[] = "RULE_SET_COMPILING_ELSEWHERE";

// Hard limits that keep a regex cheap to compile and to run.
inline constexpr size_t kMaxRegexLength = 1000;

class CompiledRules {
 public:
  // Compiles rules, or with a cache that holds them, loads them from it
  // (and stores them there after a compile). annex: the caller's bytes,
  // kept with the set (annex()) and part of its key. Errors:
  // INVALID_ARGUMENT PATTERN_EMPTY (a term that is all noise) or
  // REGEX_REJECTED (metadata `rule_index`, `why`); UNAVAILABLE
  // RULE_SET_COMPILING_ELSEWHERE while another replica holds the cache's
  // claim on these rules (ask again later). A cache error is logged, never
  // returned.
  static absl::StatusOr<std::shared_ptr<const CompiledRules>> Compile(
      std::vector<Rule> rules, CompiledRulesCache* cache = nullptr, std::string annex = "");

  // The set stored under key (a cache_key() of an earlier Compile), with
  // its rules, without them being read or built again; null when the cache
  // has no usable entry there (none, damaged, or built on another host
  // class), which is logged if it was there.
  static absl::StatusOr<std::shared_ptr<const CompiledRules>> LoadCached(const std::string& key,
                                                                         CompiledRulesCache& cache);

  // Refuses a regex that Vectorscan cannot compile, that can match the
  // empty string, that is longer than kMaxRegexLength, or whose compiled
  // form is large (a pathological bounded repeat): REGEX_REJECTED with `why`.
  static absl::Status CheckRegex(absl::string_view pattern, size_t rule_index);

  ~CompiledRules();
  CompiledRules(const CompiledRules&) = delete;
  CompiledRules& operator=(const CompiledRules&) = delete;

  // Scans normalised text. With explain, suppressed matches are listed too.
  // Reuses out's capacity. Fails only if Vectorscan fails on the regexes
  // (INTERNAL).
  absl::Status Scan(const NormalizedText& text, bool explain, ScanResult* out) const;

  const std::vector<Rule>& rules() const { return rules_; }
  // What Compile was given as its annex.
  const std::string& annex() const { return annex_; }

  // The cache key of these rules (hex SHA-256) and whether they were
  // loaded from the cache rather than compiled.
  const std::string& cache_key() const { return cache_key_; }
  bool from_cache() const { return from_cache_; }

 private:
  struct Literal {
    std::string text;
    // Per character of text: the term's run length and digit flag (empty
    // when every run is 1 and there is no digit, so no check is needed).
    std::vector<NormalizedChar> chars;
    // LiteralHit::flags.
    uint8_t hit_flags = 0;
    // Some character must occur more than once in a row: looked for only
    // in text that has a run.
    bool needs_runs = false;
    std::vector<uint32_t> rule_indexes;
  };
  // What Scan reads per literal hit, kept small and in one array so that a
  // hit costs no cache miss on the (large) Literal and Rule records.
  struct LiteralHit {
    // [rules_begin, rules_end) in literal_rules_.
    uint32_t rules_begin = 0;
    uint32_t rules_end = 0;
    // kLeftBoundary | kRightBoundary | kCheckRuns (wide: no padding).
    uint32_t flags = 0;
  };
  static constexpr uint8_t kLeftBoundary = 1;
  static constexpr uint8_t kRightBoundary = 2;
  static constexpr uint8_t kCheckRuns = 4;
  // In literal_rules_: set on the rule index of an allowlist rule.
  static constexpr uint32_t kAllowRule = 0x80000000U;

  using RawMatch = TextMatch;

  CompiledRules() = default;
  absl::Status Build(CompiledRulesCache* cache);
  // Normalises and indexes the literals, checks the regexes and lists them
  // (Vectorscan id of a regex: its index in regex_rules_, as in regex_ids).
  absl::Status BuildLiterals(std::vector<unsigned>* regex_ids);
  // The digest of every build input: the rules, the annex, the host class.
  std::string CacheKey() const;
  // The whole built set as a string, and back (false: damaged bytes, or
  // another set's or host class's, and nothing of them is kept).
  absl::StatusOr<std::string> Serialize() const;
  bool Deserialize(const std::string& bytes);
  bool DeserializeAll(const std::string& bytes);
  // Whether what was read refers only to what exists (a digest guards
  // against damage; this against bytes that were never a set).
  bool Consistent() const;
  // Deserialises the cache's entry for cache_key_ when it has a good one;
  // a failing cache or a damaged entry is logged. Returns from_cache_.
  bool LoadFromCache(CompiledRulesCache& cache);
  // Makes a built or loaded set ready to scan.
  absl::Status Finish();
  // Compiles the regex database (Vectorscan id of a regex: its index in
  // regex_rules_, as in regex_ids).
  absl::Status CompileRegexes(const std::vector<unsigned>& regex_ids);
  void FreeDatabase();
  bool LiteralMatchHolds(uint32_t literal, const NormalizedText& text, uint32_t begin,
                         uint32_t end) const;
  static int OnMatch(unsigned int id, unsigned long long from, unsigned long long to,
                     unsigned int flags, void* context);

  std::vector<Rule> rules_;
  std::vector<LiteralHit> literal_hits_;  // by literal id (LiteralIndex's)
  // Literal::chars of the literals whose runs or digits are checked (few):
  // of the literals, only these are kept once Build is done.
  absl::flat_hash_map<uint32_t, std::vector<NormalizedChar>> check_chars_;
  std::vector<uint32_t> literal_rules_;  // rule indexes, kAllowRule on allowlist rules
  std::vector<uint8_t> rule_blocks_;     // by rule index: its action is BLOCK
  // Rule indexes of the regexes, by Vectorscan id.
  std::vector<uint32_t> regex_rules_;
  // Every literal, by its id (its index in Build's list of literals).
  LiteralIndex literal_index_;
  hs_database* regex_db_ = nullptr;
  // The calling thread's scratch space for these rules: each thread keeps
  // one, for the rule set it scanned with last (a scan takes no lock), and
  // replaces it with a clone of prototype_ when the rule set has changed.
  hs_scratch* ThreadScratch() const;
  // Tells this rule set from every other one of the process, so a thread's
  // scratch is never taken for another set's (an address could be reused).
  uint64_t serial_ = 0;
  std::string cache_key_;
  std::string annex_;
  bool from_cache_ = false;
  // Allocated at Build for the regex database; only cloned, under the lock.
  mutable absl::Mutex prototype_mu_;
  hs_scratch* prototype_ = nullptr;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MATCHER_H_
