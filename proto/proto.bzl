"""cc_grpc_proto: one line per .proto gives a cc_library with its protobuf and gRPC code.

protoc and grpc_cpp_plugin come from Debian (protobuf-compiler, protobuf-compiler-grpc)
and run in a genrule, so nothing is downloaded. Generated headers are included by their
path in the workspace, e.g. "proto/process.pb.h" and "proto/process.grpc.pb.h".
"""

def cc_grpc_proto(name, src, deps = [], grpc = True, visibility = None):
    """Generates C++ (and gRPC stubs unless grpc = False) for one .proto file.

    Args:
      name: the cc_library's name; `name + "_files"` names the .proto files for importers.
      src: the .proto file in this package.
      deps: other cc_grpc_proto targets whose .proto files `src` imports.
      grpc: also run grpc_cpp_plugin (services).
      visibility: of the cc_library.
    """
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    # Paths are relative to the repository root, also when this workspace is
    # used as an external repository (@constellation).
    repo = native.repository_name().lstrip("@")
    root = "external/" + repo if repo else "."
    gen_root = "$(GENDIR)/external/" + repo if repo else "$(GENDIR)"
    plugin = " --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin --grpc_out=" + gen_root if grpc else ""

    native.filegroup(
        name = name + "_files",
        srcs = [src] + [d + "_files" for d in deps],
        visibility = ["//visibility:public"],
    )
    native.genrule(
        name = name + "_gen",
        srcs = [name + "_files"],
        outs = outs,
        cmd = "/usr/bin/protoc -I" + root + " --cpp_out=" + gen_root + plugin +
              " " + root + "/" + native.package_name() + "/" + src,
        message = "protoc " + src,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@constellation_system//:protobuf"] + (["@constellation_system//:grpc++"] if grpc else []),
        visibility = visibility,
    )
