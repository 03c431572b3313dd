// What the tests of both Redis clients share: a stand-in for a Redis server
// that the test controls (a loopback TCP socket bound to a free port,
// refusing connections until Listen(), then accepting into the kernel
// backlog; Serve() answers RESP commands), and the check of a transport
// failure.
#ifndef QUNZU_TESTS_COMMON_FAKE_REDIS_SERVER_H_
#define QUNZU_TESTS_COMMON_FAKE_REDIS_SERVER_H_

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"

namespace qunzu::testing {

class FakeServer {
 public:
  FakeServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), length), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~FakeServer() {
    if (server_.joinable()) server_.join();
    close(fd_);
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  void Listen(int backlog) { ASSERT_EQ(listen(fd_, backlog), 0); }

  // Accepts one connection for a test that serves it itself (the peer's
  // socket; the test closes it).
  int Accept() { return accept(fd_, nullptr, nullptr); }
  // Reads from peer onto received until it holds `commands` whole
  // commands; false if the connection closed first.
  static bool ReadCommands(int peer, int commands, std::string* received) {
    char chunk[4096];
    while (CountCommands(*received) < commands) {
      ssize_t n = read(peer, chunk, sizeof(chunk));
      if (n <= 0) return false;
      received->append(chunk, static_cast<size_t>(n));
    }
    return true;
  }
  // Whole RESP multi-bulk commands at the start of data.
  static int CountCommands(absl::string_view data) {
    int count = 0;
    while (!data.empty()) {
      int args = 0;
      if (!ReadHeader(data, '*', &args)) return count;
      for (int i = 0; i < args; ++i) {
        int length = 0;
        if (!ReadHeader(data, '$', &length) || data.size() < static_cast<size_t>(length) + 2) {
          return count;
        }
        data.remove_prefix(static_cast<size_t>(length) + 2);
      }
      ++count;
    }
    return count;
  }

  // Accepts one connection and, only once `commands` whole commands have
  // arrived, writes `reply` once per command.
  void Serve(int commands, const std::string& reply) {
    server_ = std::thread([this, commands, reply] {
      int peer = accept(fd_, nullptr, nullptr);
      std::string received;
      (void)ReadCommands(peer, commands, &received);
      std::string out;
      for (int i = 0; i < commands; ++i) out += reply;
      EXPECT_EQ(write(peer, out.data(), out.size()), static_cast<ssize_t>(out.size()));
      close(peer);
    });
  }

 private:
  static bool ReadHeader(absl::string_view& data, char kind, int* value) {
    size_t end = data.find("\r\n");
    if (data.empty() || data[0] != kind || end == absl::string_view::npos) return false;
    if (!absl::SimpleAtoi(data.substr(1, end - 1), value)) return false;
    data.remove_prefix(end + 2);
    return true;
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread server_;
};

// UNAVAILABLE REDIS_UNAVAILABLE naming the address.
inline void ExpectRedisUnavailable(const absl::Status& status, const std::string& address) {
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), "REDIS_UNAVAILABLE");
  EXPECT_THAT(status.message(), ::testing::HasSubstr(address));
}

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_COMMON_FAKE_REDIS_SERVER_H_
