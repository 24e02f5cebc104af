#!/bin/sh
echo "coverage is not supported in this offline workspace (no remote_coverage_tools)" >&2
exit 1
