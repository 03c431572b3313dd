#include "common/resp_frame.h"

#include <algorithm>

#include "absl/strings/numbers.h"

namespace qunzu {

RespFrameScanner::Result RespFrameScanner::Scan(absl::string_view reply, size_t* length) {
  for (;;) {
    if (next_ >= reply.size()) return Result::kIncomplete;
    const size_t from = std::max(searched_, next_);
    const size_t eol = reply.find("\r\n", from);
    if (eol == absl::string_view::npos) {
      examined_ += reply.size() - from;
      // A '\r' at the very end may be the first half of the "\r\n".
      searched_ = std::max(next_, reply.size() - 1);
      return Result::kIncomplete;
    }
    examined_ += eol + 2 - from;
    searched_ = eol;
    const char type = reply[next_];
    const absl::string_view line = reply.substr(next_ + 1, eol - next_ - 1);
    const size_t body = eol + 2;
    int64_t n = 0;
    // Elements of an aggregate about to open (0: the element is whole).
    int64_t open = 0;
    switch (type) {
      case '+':
      case '-':
      case ':':
      case '_':
      case '#':
      case ',':
      case '(':
        break;
      case '$':
      case '!':
      case '=':
        if (!absl::SimpleAtoi(line, &n) || n < -1 || (n == -1 && type != '$')) {
          return Result::kBad;
        }
        if (n >= 0) {
          const auto size = static_cast<size_t>(n);
          // Not all there yet: the header is found again at once (searched_).
          if (reply.size() < body + 2 || reply.size() - body - 2 < size) {
            return Result::kIncomplete;
          }
          if (reply.substr(body + size, 2) != "\r\n") return Result::kBad;
          next_ = body + size + 2;
          searched_ = next_;
          if (ElementDone()) {
            *length = next_;
            return Result::kComplete;
          }
          continue;
        }
        break;
      case '*':
      case '~':
      case '>':
        if (!absl::SimpleAtoi(line, &n) || n < -1 || (n == -1 && type != '*')) {
          return Result::kBad;
        }
        open = std::max<int64_t>(n, 0);
        break;
      case '%':
      case '|':
        if (!absl::SimpleAtoi(line, &n) || n < 0 || n > (int64_t{1} << 40)) return Result::kBad;
        // An attribute's pairs describe the reply that follows them: one
        // element with it.
        open = 2 * n + (type == '|' ? 1 : 0);
        break;
      default:
        return Result::kBad;
    }
    next_ = body;
    searched_ = next_;
    if (open > 0) {
      if (open_.size() >= kMaxDepth) return Result::kBad;
      open_.push_back(open);
      continue;
    }
    if (ElementDone()) {
      *length = next_;
      return Result::kComplete;
    }
  }
}

bool RespFrameScanner::ElementDone() {
  while (!open_.empty()) {
    if (--open_.back() > 0) return false;
    open_.pop_back();
  }
  return true;
}

void RespFrameScanner::Reset() {
  next_ = 0;
  searched_ = 0;
  open_.clear();
  examined_ = 0;
}

}  // namespace qunzu
