// Where a RESP2/RESP3 reply ends, found across reads in linear time.
//
// A reply arrives in as many reads as the socket likes. Parsing it afresh
// from its start after every read costs O(size) per read, and for an
// aggregate of many elements O(size²) in all. RespFrameScanner walks the
// reply's headers once, keeping where it stopped and how many elements each
// open aggregate still needs, and says where the reply ends once all of it
// is there; the caller then parses those bytes once.
//
// The scanner checks only what framing needs (types, lengths, counts,
// nesting); what the values say is the parser's to check.
#ifndef QUNZU_COMMON_RESP_FRAME_H_
#define QUNZU_COMMON_RESP_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace qunzu {

class RespFrameScanner {
 public:
  enum class Result { kComplete, kIncomplete, kBad };

  // Aggregates nested deeper than this are refused (kBad).
  static constexpr size_t kMaxDepth = 16;

  // `reply` holds the reply from its first byte: the same bytes as at the
  // last call, and more. On kComplete, *length is the reply's size
  // (attributes before it included); Reset before the next reply.
  Result Scan(absl::string_view reply, size_t* length);

  // Forgets the reply scanned so far.
  void Reset();

  // Bytes looked at since the last Reset, in all calls (each header is
  // searched once for its end; blob bodies are skipped).
  uint64_t bytes_examined() const { return examined_; }

 private:
  // One element ended: the open aggregates it completes close with it.
  // Returns true when the reply itself is complete.
  bool ElementDone();

  // Where the next element's header starts.
  size_t next_ = 0;
  // How far the search for that header's "\r\n" got.
  size_t searched_ = 0;
  // Elements each open aggregate still needs, outermost first.
  std::vector<int64_t> open_;
  uint64_t examined_ = 0;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_RESP_FRAME_H_
