#!/usr/bin/python3
"""Runs a program on a Constellation cluster through the job API, from Python.

    PYTHONPATH=bazel-bin/examples/python/gen \\
      python3 examples/python/submit.py --tls=DIR ADDR ./program [args...]

Uploads the binary (once: the master keeps it by its SHA-256), submits a job,
prints its output as it comes, and exits with the job's exit code. To show
that a job does not depend on its client, it can hang up mid-way
(--disconnect-after=N lines), and then reconnects and asks for the events
after the last one it saw (Watch's from_seq): no line is lost or repeated.
--input=TEXT is written to the job's stdin while the client is away, so the
rest of the output is made while nobody watches and comes from the job's log.

Needs Debian's python3-grpcio and python3-protobuf, and the stubs that
`bazel build //examples/python:stubs` generates from proto/jobs.proto.
docs/jobs.md describes the API.
"""

import argparse
import hashlib
import os
import sys
import time
import uuid

import grpc

from proto import jobs_pb2
from proto import jobs_pb2_grpc

CHUNK = 1 << 20  # upload chunks; the API allows up to 4 MiB
RECONNECT_TIMEOUT = 60.0  # seconds to keep trying a master that went away
FINISHED = (jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED)


def log(message):
    print("submit.py: " + message, file=sys.stderr, flush=True)


def connect(addr, tls_dir):
    """A channel to the master: mutual TLS with a client bundle, or none."""
    if tls_dir is None:
        return grpc.insecure_channel(addr)

    def read(name):
        with open(os.path.join(tls_dir, name), "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"), private_key=read("key.pem"), certificate_chain=read("cert.pem"))
    return grpc.secure_channel(addr, credentials)


def upload(stub, path):
    """Uploads the binary unless the master has it; returns its BinaryRef."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    ref = jobs_pb2.BinaryRef(sha256=digest.hexdigest(), size=os.path.getsize(path))
    if stub.HasBinary(jobs_pb2.HasBinaryRequest(binary=ref)).present:
        return ref

    def requests():
        yield jobs_pb2.UploadBinaryRequest(binary=ref)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                yield jobs_pb2.UploadBinaryRequest(chunk=block)

    stub.UploadBinary(requests())
    log("uploaded %s (%d bytes)" % (ref.sha256[:12], ref.size))
    return ref


class Watcher:
    """Follows one job's events across connections: remembers the last seq."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.last_seq = 0
        self.lines = 0  # complete lines of output printed
        self.final = None  # the StateChange that ended the job

    def follow(self, stub, stop_after_lines=None):
        """Prints events after last_seq until the job ends, or until
        stop_after_lines lines were printed (then returns False)."""
        request = jobs_pb2.WatchRequest(job=self.job_id, from_seq=self.last_seq, follow=True)
        for event in stub.Watch(request):
            if event.seq <= self.last_seq:
                continue  # seen before (a server may repeat one after a reconnect)
            self.last_seq = event.seq
            kind = event.WhichOneof("kind")
            if kind == "process" and event.process.WhichOneof("event") == "output":
                output = event.process.output
                stream = sys.stdout if output.fd == 1 else sys.stderr
                stream.buffer.write(output.data)
                stream.flush()
                if output.fd == 1:
                    self.lines += output.data.count(b"\n")
            elif kind == "truncated":
                log("%d bytes of output were not kept: %s" % (event.truncated.dropped_bytes, event.truncated.why))
            elif kind == "state" and event.state.state in FINISHED:
                self.final = event.state
            if stop_after_lines is not None and self.lines >= stop_after_lines and self.final is None:
                return False
        return True


def follow_with_retry(addr, tls_dir, watcher):
    """Follows to the end, reconnecting from the last seq if the master goes
    away (a restart), for up to RECONNECT_TIMEOUT without progress."""
    failing_since, wait = None, 0.1
    while True:
        seen = watcher.last_seq
        channel = connect(addr, tls_dir)
        try:
            watcher.follow(jobs_pb2_grpc.JobsStub(channel))
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            if watcher.last_seq != seen or failing_since is None:
                failing_since, wait = time.monotonic(), 0.1
            if time.monotonic() - failing_since > RECONNECT_TIMEOUT:
                raise
            log("lost the master (%s); reconnecting from seq %d" % (e.details(), watcher.last_seq))
            time.sleep(wait)
            wait = min(wait * 2, 2.0)
        finally:
            channel.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tls", help="client bundle directory (ca.pem, cert.pem, key.pem)")
    parser.add_argument("--insecure", action="store_true", help="no TLS (a cluster run with --insecure)")
    parser.add_argument("--disconnect-after", type=int, metavar="N",
                        help="hang up after N lines of output, then reconnect")
    parser.add_argument("--input", help="written to the job's stdin (then EOF) while disconnected")
    parser.add_argument("addr", help="the master's job API, host:port")
    parser.add_argument("binary")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    if (options.tls is None) == (not options.insecure):
        parser.error("give exactly one of --tls=DIR and --insecure")
    if options.input is not None and options.disconnect_after is None:
        parser.error("--input is written while disconnected: it needs --disconnect-after")

    channel = connect(options.addr, options.tls)
    stub = jobs_pb2_grpc.JobsStub(channel)
    name = os.path.basename(options.binary)
    spec = jobs_pb2.JobSpec(
        binary=upload(stub, options.binary),
        argv=[name] + [a for a in options.args if a != "--"],
        env=["%s=%s" % (k, v) for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ")],
        labels={"client": "submit.py"},
        request_id=uuid.uuid4().hex,  # a retried Submit returns the same job
        attach_stdin=options.input is not None,
        name=name)
    job = stub.Submit(jobs_pb2.SubmitRequest(spec=spec))
    log("submitted job %s" % job.id)
    watcher = Watcher(job.id)

    if options.disconnect_after is not None:
        finished = watcher.follow(stub, stop_after_lines=options.disconnect_after)
        channel.close()  # hang up: the job runs on without us
        if not finished:
            log("disconnected after seq %d" % watcher.last_seq)
            if options.input is not None:
                channel = connect(options.addr, options.tls)
                jobs_pb2_grpc.JobsStub(channel).WriteStdin(
                    jobs_pb2.WriteStdinRequest(job=job.id, data=options.input.encode(), eof=True))
                channel.close()
            log("reconnecting from seq %d" % watcher.last_seq)
    if watcher.final is None:
        follow_with_retry(options.addr, options.tls, watcher)

    final = watcher.final
    if final is None:
        log("the stream ended before job %s finished" % job.id)
        return 2
    state = jobs_pb2.JobState.Name(final.state)[len("JOB_STATE_"):].lower()
    log("job %s %s, exit code %d%s" % (job.id, state, final.exit_code, ": " + final.reason if final.reason else ""))
    if final.state != jobs_pb2.JOB_STATE_SUCCEEDED and final.exit_code == 0:
        return 2  # failed to start, or cancelled before it ran: never a success
    return final.exit_code


if __name__ == "__main__":
    sys.exit(main())
