// Package bench measures the function the way Lambda runs it, and holds no
// code of the product: its tests build the real bootstrap and a hello-world
// aws-lambda-go function (bench/hello) with the Lambda build flags and run
// them under the Lambda runtime interface emulator.
//
//   - BenchmarkColdStart: from the first invocation, which makes the
//     emulator start the binary, to its response, for both binaries in
//     turn, with the init duration the emulator logs.
//   - BenchmarkWarmInvocation: warm invocations of the bootstrap tagging a
//     key in local-kms, and of hello world, with the peak resident memory
//     (VmHWM) of the function's process after them.
//   - TestInitMakesNoNetworkCall: starting the function and handling an
//     event it skips opens no connection.
//
// size.sh checks the size of the linux/arm64 bootstrap and its zip and
// lists the SDK modules linked. `make bench` runs them all and writes
// bench/results.txt; docs/PERFORMANCE.md records the figures.
package bench
