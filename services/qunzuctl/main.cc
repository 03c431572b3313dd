// qunzuctl: the command-line tool for Qunzu's staff and the regulator's
// inspectors. Usage and exit codes: `qunzuctl --help` and the README.
#include <iostream>
#include <string>
#include <vector>

#include "services/qunzuctl/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return qunzu::ctl::Main(args, std::cout, std::cerr);
}
