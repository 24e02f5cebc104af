"""constellation_deps(): every repository a workspace needs to build @constellation.

A consumer's WORKSPACE (docs/bazel.md):

    local_repository(name = "constellation", path = "/path/to/constellation")
    load("@constellation//bazel:deps.bzl", "constellation_deps")
    constellation_deps()

Nothing is downloaded. Declared here:
  - constellation_system: a view of /usr with one cc_library per Debian library
    (third_party/system.BUILD; tools/bootstrap.sh installs the packages);
  - rules_cc, rules_java, remote_coverage_tools, platforms: names Bazel itself
    asks for (its default WORKSPACE suffix would download them). Each is declared
    only when the workspace has not declared it already, so a consumer with its
    own copies keeps them; ours are the offline shims in third_party/ and the
    platforms Debian's bazel-bootstrap ships.
"""

# The shim directories of this repository, by a file in each: a macro cannot
# know where @constellation is on disk, a repository rule can
# (repository_ctx.path of a label).
_SHIMS = {
    "rules_cc": "//third_party/rules_cc:WORKSPACE",
    "rules_java": "//third_party/rules_java:WORKSPACE",
    "remote_coverage_tools": "//third_party/remote_coverage_tools:WORKSPACE",
}

def _shim_repository_impl(ctx):
    # Links every top-level entry of the shim's directory, as
    # new_local_repository does with its path.
    directory = ctx.path(ctx.attr.marker).dirname
    for entry in directory.readdir():
        ctx.symlink(entry, entry.basename)

_shim_repository = repository_rule(
    implementation = _shim_repository_impl,
    attrs = {"marker": attr.label(allow_single_file = True, mandatory = True)},
    local = True,
    doc = "A repository that is one of @constellation's third_party/ shim directories.",
)

def constellation_deps():
    """Declares the repositories @constellation needs; call it from WORKSPACE."""
    for name, marker in _SHIMS.items():
        if not native.existing_rule(name):
            # Label(): resolved against this file's repository, wherever the
            # consumer has put it.
            _shim_repository(name = name, marker = Label(marker))
    if not native.existing_rule("platforms"):
        native.local_repository(name = "platforms", path = "/usr/share/bazel/platforms")
    if not native.existing_rule("constellation_system"):
        native.new_local_repository(
            name = "constellation_system",
            path = "/usr",
            build_file = str(Label("//third_party:system.BUILD")),
        )
