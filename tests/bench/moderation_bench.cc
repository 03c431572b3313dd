// moderation: the content screen (normalise + match, every transform on)
// against raw Vectorscan on the same terms with no normalisation, on 10k and
// 100k Chinese terms drawn from python3-jieba's dictionary, single thread.
#include <hs.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "services/moderation/matcher.h"
#include "services/moderation/normalizer.h"
#include "tests/bench/jieba_words.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

using moderation::CompiledRules;
using moderation::NormalizedText;
using moderation::Normalizer;
using moderation::Rule;
using moderation::RuleKind;
using moderation::ScanResult;
using Clock = std::chrono::steady_clock;

constexpr size_t kMessages = 40000;
constexpr int kRounds = 3;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int OnMatch(unsigned int, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  ++*static_cast<size_t*>(ctx);
  return 0;
}

// Best of kRounds, in MB/s of original text.
template <typename Fn>
double Throughput(const std::vector<std::string>& messages, size_t bytes, Fn&& screen) {
  double best = 0;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = Clock::now();
    for (const std::string& message : messages) screen(message);
    best = std::max(best, static_cast<double>(bytes) / 1e6 / Seconds(start));
  }
  return best;
}

int RunOne(const char* mix, const std::vector<std::string>& words, size_t term_count,
           const std::vector<std::string>& messages, size_t bytes) {
  std::vector<Rule> rules;
  std::vector<std::string> terms;
  const size_t stride = std::max<size_t>(1, words.size() / term_count);
  for (size_t i = 0; i < words.size() && terms.size() < term_count; i += stride) {
    if (words[i].size() < 6) continue;  // two CJK characters or more
    terms.push_back(words[i]);
    rules.push_back(Rule{terms.size(), RuleKind::kLiteral, words[i], 2});
  }
  auto start = Clock::now();
  auto compiled = CompiledRules::Compile(rules);
  const double compile_seconds = Seconds(start);
  if (!compiled.ok()) {
    std::fprintf(stderr, "compile failed: %s\n", compiled.status().ToString().c_str());
    return 1;
  }
  start = Clock::now();
  hs_database_t* raw_db = CompileRawLiterals(terms);
  if (raw_db == nullptr) return 1;
  const double raw_compile_seconds = Seconds(start);
  hs_scratch_t* scratch = nullptr;
  hs_alloc_scratch(raw_db, &scratch);
  size_t raw_hits = 0;
  const double raw = Throughput(messages, bytes, [&](const std::string& m) {
    hs_scan(raw_db, m.data(), static_cast<unsigned>(m.size()), 0, scratch, &OnMatch, &raw_hits);
  });
  NormalizedText normalized;
  ScanResult result;
  size_t screened_hits = 0;
  const double screened = Throughput(messages, bytes, [&](const std::string& m) {
    (void)Normalizer::Get().NormalizeText(m, &normalized);
    (void)(*compiled)->Scan(normalized, false, &result);
    screened_hits += result.matches.size();
  });
  const double normalise_only = Throughput(messages, bytes, [&](const std::string& m) {
    (void)Normalizer::Get().NormalizeText(m, &normalized);
  });
  size_t db_bytes = 0;
  hs_database_size(raw_db, &db_bytes);
  // The rounds of the screened run each counted the same matches.
  std::printf("| %s | %zu | %.2f | %.0f | %.0f | %.0f | %.2f | %.2f s (raw %.2f s) | %.1f MiB |\n",
              mix, terms.size(),
              static_cast<double>(screened_hits) / kRounds / static_cast<double>(messages.size()),
              screened, normalise_only, raw, screened / raw, compile_seconds, raw_compile_seconds,
              static_cast<double>(db_bytes) / (1 << 20));
  hs_free_scratch(scratch);
  hs_free_database(raw_db);
  return 0;
}

}  // namespace

int RunModerationBench() {
  const std::string path = JiebaDictPath();
  const JiebaDictionary dictionary = LoadJiebaDictionary(path);
  if (dictionary.words.size() < 100000) {
    std::printf("moderation: skipped, no jieba dictionary at %s (apt-get install python3-jieba)\n",
                path.c_str());
    return 0;
  }
  (void)Normalizer::Get();
  std::printf(
      "\n### moderation: content screen, one core, %zu messages per mix\n\n"
      "| mix | terms | matches per message | screen MB/s (all normalisation) | of which "
      "normalising alone MB/s | raw Vectorscan MB/s | ratio | compile | raw db size |\n"
      "|---|---|---|---|---|---|---|---|---|\n",
      kMessages);
  for (const bool chat : {true, false}) {
    const std::vector<std::string> messages = MakeJiebaMessages(dictionary, kMessages, chat);
    size_t bytes = 0;
    for (const std::string& m : messages) bytes += m.size();
    const std::string mix =
        absl::StrFormat("%s (%.1f MB)", chat ? "chat" : "dense", static_cast<double>(bytes) / 1e6);
    for (size_t terms : {size_t{10000}, size_t{100000}}) {
      if (RunOne(mix.c_str(), dictionary.words, terms, messages, bytes) != 0) return 1;
    }
  }
  return 0;
}

}  // namespace qunzu::bench
