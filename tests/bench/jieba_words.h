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

// The words of the dictionary, in file order; empty when it is missing.
std::vector<std::string> LoadJiebaWords(const std::string& path);

// `count` messages of 8-30 dictionary words with some punctuation,
// ~60-200 bytes, from a fixed seed.
std::vector<std::string> MakeJiebaMessages(const std::vector<std::string>& words, size_t count);

// The baseline of the moderation benchmarks: `terms` compiled as they are
// by hs_compile_lit_multi (block mode, id = index); null on failure.
hs_database_t* CompileRawLiterals(const std::vector<std::string>& terms);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_JIEBA_WORDS_H_
