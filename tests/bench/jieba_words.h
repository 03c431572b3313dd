// Realistic Chinese terms and messages for the moderation benchmarks, drawn
// from Debian's python3-jieba dictionary (~350k words with frequencies), and
// the raw Vectorscan baseline they are compared with.
#ifndef QUNZU_TESTS_BENCH_JIEBA_WORDS_H_
#define QUNZU_TESTS_BENCH_JIEBA_WORDS_H_

#include <hs.h>

#include <cstddef>
#include <string>
#include <vector>

namespace qunzu::bench {

// Where the dictionary is unless QUNZU_JIEBA_DICT says otherwise.
inline constexpr char kDefaultJiebaDict[] = "/usr/lib/python3/dist-packages/jieba/dict.txt";

// The dictionary's path (QUNZU_JIEBA_DICT or the default).
std::string JiebaDictPath();

// The dictionary: its words in file order and how often each occurs in
// jieba's corpus; both empty when it is missing.
struct JiebaDictionary {
  std::vector<std::string> words;
  std::vector<double> frequencies;
};
JiebaDictionary LoadJiebaDictionary(const std::string& path);

// `count` messages of 8-30 words with some punctuation, from a fixed seed.
// With `by_frequency`, words are drawn as often as they occur in the corpus,
// like real chat ("chat" mix: mostly common short words, few hits);
// otherwise every dictionary word is equally likely ("dense" mix: rare
// long words, ~60-200 bytes a message, hit-dense against a term set spread
// over the dictionary).
std::vector<std::string> MakeJiebaMessages(const JiebaDictionary& dictionary, size_t count,
                                           bool by_frequency = false);

// Distinct terms for large rule sets: every word of two characters or more,
// then pairs of words ("word1word2") until there are `count`.
std::vector<std::string> ManyDistinctTerms(const std::vector<std::string>& words, size_t count);

// The baseline of the moderation benchmarks: `terms` compiled as they are
// by hs_compile_lit_multi (block mode, id = index); null on failure.
hs_database_t* CompileRawLiterals(const std::vector<std::string>& terms);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_JIEBA_WORDS_H_
