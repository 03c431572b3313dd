// moderation: the content screen (normalise + match, every transform on)
// against raw Vectorscan on the same terms with no normalisation, on 10k and
// 100k Chinese terms drawn from python3-jieba's dictionary, single thread.
#include <hs.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "services/moderation/matcher.h"
#include "services/moderation/normalizer.h"
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

constexpr char kDefaultDict[] = "/usr/lib/python3/dist-packages/jieba/dict.txt";
constexpr size_t kMessages = 40000;
constexpr int kRounds = 3;

std::vector<std::string> LoadWords(const std::string& path) {
  std::vector<std::string> words;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space != std::string::npos && space > 0) words.push_back(line.substr(0, space));
  }
  return words;
}

// Messages of 8-30 dictionary words with some punctuation, ~60-200 bytes.
std::vector<std::string> MakeMessages(const std::vector<std::string>& words) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<size_t> pick(0, words.size() - 1);
  std::uniform_int_distribution<int> count(8, 30);
  std::vector<std::string> messages;
  for (size_t m = 0; m < kMessages; ++m) {
    std::string text;
    const int n = count(rng);
    for (int w = 0; w < n; ++w) {
      text += words[pick(rng)];
      if (w % 7 == 6) text += "，";
    }
    text += "。";
    messages.push_back(std::move(text));
  }
  return messages;
}

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

int RunOne(const std::vector<std::string>& words, size_t term_count,
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
  std::vector<const char*> patterns;
  std::vector<size_t> lengths;
  std::vector<unsigned> flags(terms.size(), 0);
  std::vector<unsigned> ids;
  for (size_t i = 0; i < terms.size(); ++i) {
    patterns.push_back(terms[i].data());
    lengths.push_back(terms[i].size());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* raw_db = nullptr;
  hs_compile_error_t* error = nullptr;
  start = Clock::now();
  if (hs_compile_lit_multi(patterns.data(), flags.data(), ids.data(), lengths.data(),
                           static_cast<unsigned>(terms.size()), HS_MODE_BLOCK, nullptr, &raw_db,
                           &error) != HS_SUCCESS) {
    hs_free_compile_error(error);
    return 1;
  }
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
    (void)Normalizer::Get().Normalize(m, &normalized);
    (void)(*compiled)->Scan(normalized, false, &result);
    screened_hits += result.matches.size();
  });
  size_t db_bytes = 0;
  hs_database_size(raw_db, &db_bytes);
  std::printf("| %zu | %.0f | %.0f | %.2f | %.2f s (raw %.2f s) | %.1f MiB |\n", terms.size(),
              screened, raw, screened / raw, compile_seconds, raw_compile_seconds,
              static_cast<double>(db_bytes) / (1 << 20));
  std::fprintf(stderr, "terms %zu: raw hits %zu, screened hits %zu\n", terms.size(), raw_hits,
               screened_hits);
  hs_free_scratch(scratch);
  hs_free_database(raw_db);
  return 0;
}

}  // namespace

int RunModerationBench() {
  const char* env = std::getenv("QUNZU_JIEBA_DICT");
  const std::string path = env != nullptr ? env : kDefaultDict;
  const std::vector<std::string> words = LoadWords(path);
  if (words.size() < 100000) {
    std::printf("moderation: skipped, no jieba dictionary at %s (apt-get install python3-jieba)\n",
                path.c_str());
    return 0;
  }
  (void)Normalizer::Get();
  const std::vector<std::string> messages = MakeMessages(words);
  size_t bytes = 0;
  for (const std::string& m : messages) bytes += m.size();
  std::printf("\n### moderation: content screen, one core, %zu messages, %.1f MB\n\n",
              messages.size(), static_cast<double>(bytes) / 1e6);
  std::printf(
      "| terms | screen MB/s (all normalisation) | raw Vectorscan MB/s | ratio | compile | raw "
      "db size |\n|---|---|---|---|---|---|\n");
  for (size_t terms : {size_t{10000}, size_t{100000}}) {
    if (RunOne(words, terms, messages, bytes) != 0) return 1;
  }
  return 0;
}

}  // namespace qunzu::bench
