"""cc_fuzz_target: a libFuzzer target and the test that replays its corpus.

cc_fuzz_target(name = "codec_fuzzer", srcs = ["codec_fuzzer.cc"], deps = [...]) makes
  :codec_fuzzer         the libFuzzer binary; tagged manual: only tools/fuzz.sh
                        builds it, with clang-14 and -fsanitize=fuzzer,address,undefined
  :codec_fuzzer_replay  a cc_test (built with the normal toolchain by `bazel test //...`)
                        that runs the same LLVMFuzzerTestOneInput on the target's
                        Seeds() and on every file of codec_fuzzer_corpus/: the seed
                        corpus and every finding kept as a regression case.
srcs define LLVMFuzzerTestOneInput and constellation::fuzz::Seeds() (tools/fuzz/seeds.h).
"""

def cc_fuzz_target(name, srcs, deps = [], size = "small"):
    corpus = name + "_corpus"
    native.filegroup(
        name = corpus + "_files",
        srcs = native.glob([corpus + "/**"]),
        testonly = True,
    )
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + [
            "//tools/fuzz:seeds",
            "//third_party:sanitizer_suppressions",
        ],
        linkopts = ["-fsanitize=fuzzer"],
        tags = [
            "fuzzer",
            "manual",
        ],
        testonly = True,
    )
    native.cc_test(
        name = name + "_replay",
        size = size,
        srcs = srcs,
        deps = deps + [
            "//tools/fuzz:replay_main",
            "//tools/fuzz:seeds",
            "//third_party:sanitizer_suppressions",
        ],
        data = [":" + corpus + "_files"],
        args = [native.package_name() + "/" + corpus],
    )
