#include "tests/bench/jieba_words.h"

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace qunzu::bench {

std::string JiebaDictPath() {
  const char* env = std::getenv("QUNZU_JIEBA_DICT");
  return env != nullptr ? env : kDefaultJiebaDict;
}

JiebaDictionary LoadJiebaDictionary(const std::string& path) {
  JiebaDictionary dictionary;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0) continue;
    dictionary.words.push_back(line.substr(0, space));
    dictionary.frequencies.push_back(std::strtod(line.c_str() + space + 1, nullptr));
  }
  return dictionary;
}

std::vector<std::string> MakeJiebaMessages(const JiebaDictionary& dictionary, size_t count,
                                           bool by_frequency) {
  const std::vector<std::string>& words = dictionary.words;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<size_t> uniform(0, words.size() - 1);
  std::discrete_distribution<size_t> weighted(dictionary.frequencies.begin(),
                                              dictionary.frequencies.end());
  auto pick = [&](std::mt19937_64& r) { return by_frequency ? weighted(r) : uniform(r); };
  std::uniform_int_distribution<int> length(8, 30);
  std::vector<std::string> messages;
  messages.reserve(count);
  for (size_t m = 0; m < count; ++m) {
    std::string text;
    const int n = length(rng);
    for (int w = 0; w < n; ++w) {
      text += words[pick(rng)];
      if (w % 7 == 6) text += "，";
    }
    text += "。";
    messages.push_back(std::move(text));
  }
  return messages;
}

std::vector<std::string> ManyDistinctTerms(const std::vector<std::string>& words, size_t count) {
  std::vector<std::string> all;
  std::unordered_set<std::string> seen;
  for (const std::string& w : words) {
    if (w.size() >= 6 && seen.insert(w).second) all.push_back(w);
  }
  for (size_t i = 0; all.size() < count && !words.empty(); ++i) {
    // Round r = i / n pairs each word a with the word r + 1 places on.
    const size_t a = i % words.size();
    std::string pair = words[a] + words[(a + 1 + i / words.size()) % words.size()];
    if (seen.insert(pair).second) all.push_back(std::move(pair));
  }
  return all;
}

hs_database_t* CompileRawLiterals(const std::vector<std::string>& terms) {
  std::vector<const char*> patterns;
  std::vector<size_t> lengths;
  std::vector<unsigned> flags(terms.size(), 0);
  std::vector<unsigned> ids;
  for (size_t i = 0; i < terms.size(); ++i) {
    patterns.push_back(terms[i].data());
    lengths.push_back(terms[i].size());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_compile_lit_multi(patterns.data(), flags.data(), ids.data(), lengths.data(),
                           static_cast<unsigned>(terms.size()), HS_MODE_BLOCK, nullptr, &db,
                           &error) != HS_SUCCESS) {
    hs_free_compile_error(error);
    return nullptr;
  }
  return db;
}

}  // namespace qunzu::bench
