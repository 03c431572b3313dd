// The scenarios `make bench` runs; each prints a Markdown table with its
// baseline and the ratio, and returns a process exit code.
#ifndef QUNZU_TESTS_BENCH_SCENARIOS_H_
#define QUNZU_TESTS_BENCH_SCENARIOS_H_

namespace qunzu::bench {

// A unary RPC through GrpcServer against a bare gRPC server, in process.
int RunRpcBench();

// A state change recorded with idempotency and audit outbox rows against
// the bare change, on the MariaDB named by QUNZU_MYSQL_DSN.
int RunOutboxBench();

// The audit log's durable appends at batch sizes 1, 100 and 1,000 against
// raw multi-row INSERTs of same-size rows (audit_bench.cc).
int RunAuditBench();

// The content screen with every normalisation against raw Vectorscan on the
// same terms, at 10k and 100k jieba terms (moderation_bench.cc).
int RunModerationBench();
// JoinGroup with both caps, idempotency and audit, 32 threads, against the
// bare member INSERT on the same MariaDB (groups_bench.cc).
int RunGroupsBench();
// ScreenMessage through the moderation service on our server stack, at
// saturation and at 10,000 calls/s, against the empty RPC on the same stack
// (screen_bench.cc).
int RunScreenBench();
// Compile time and memory of 100k and 1M term rule sets against raw
// Vectorscan on the same terms (screen_bench.cc).
int RunRuleCompileBench();
// From a version's activation to its being in force on another replica
// (reading its rules, loading the compiled set) against that replica
// compiling the rules itself, at 100k and 1M terms
// (rule_activation_bench.cc).
int RunRuleActivationBench();

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_SCENARIOS_H_
