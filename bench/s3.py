#!/usr/bin/env python3
"""The object-store side of bench/run.sh's S3 rows, with the standard library only: unsigned
requests to a local moto_server (which answers them with authentication off).

    s3.py wait ENDPOINT                  until the server answers (at most 60 s)
    s3.py mkbucket ENDPOINT BUCKET
    s3.py size ENDPOINT BUCKET KEY       prints the object's size; exit 1 if there is none
    s3.py delete ENDPOINT BUCKET KEY
    s3.py put ENDPOINT BUCKET KEY FILE   a multipart upload of FILE as aa makes one: parts of
                                         8 MiB, up to 4 in flight (PART_MIB, IN_FLIGHT)

`put` is the baseline of the rows: how fast the server takes the same bytes from a client that
does nothing else, so the reader sees which part of a backup's time is the server's.
"""

import concurrent.futures
import http.client
import os
import re
import sys
import threading
import time
import urllib.parse


def connection(endpoint):
    url = urllib.parse.urlsplit(endpoint)
    return http.client.HTTPConnection(url.hostname, url.port or 80, timeout=120)


def request(endpoint, method, path, body=None, conn=None):
    own = conn is None
    conn = conn or connection(endpoint)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Length": str(len(body) if body else 0)})
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data
    finally:
        if own:
            conn.close()


def check(status, what, data):
    if status // 100 != 2:
        sys.exit(f"s3.py: {what}: HTTP {status}: {data[:300]!r}")


def wait(endpoint):
    deadline = time.monotonic() + 60
    while True:
        try:
            request(endpoint, "GET", "/")
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"s3.py: {endpoint} does not answer")
            time.sleep(0.1)


def put(endpoint, bucket, key, path):
    part_size = int(os.environ.get("PART_MIB", "8")) << 20
    in_flight = int(os.environ.get("IN_FLIGHT", "4"))
    target = f"/{bucket}/{urllib.parse.quote(key)}"
    status, _, data = request(endpoint, "POST", f"{target}?uploads")
    check(status, "CreateMultipartUpload", data)
    upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", data).group(1).decode()
    local = threading.local()

    def send(number, body):
        if not hasattr(local, "conn"):
            local.conn = connection(endpoint)
        status, headers, data = request(
            endpoint, "PUT",
            f"{target}?partNumber={number}&uploadId={urllib.parse.quote(upload_id)}",
            body, local.conn)
        check(status, f"UploadPart {number}", data)
        return number, {k.lower(): v for k, v in headers.items()}["etag"]

    etags = {}
    with open(path, "rb") as f, concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        pending = set()
        number = 0
        while True:
            body = f.read(part_size)
            if not body:
                break
            number += 1
            pending.add(pool.submit(send, number, body))
            # At most IN_FLIGHT parts read and not yet sent, as aa holds them.
            if len(pending) >= in_flight:
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED)
                etags.update(d.result() for d in done)
        etags.update(d.result() for d in pending)
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>"
                    for n in sorted(etags))
    body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
    status, _, data = request(endpoint, "POST", f"{target}?uploadId={urllib.parse.quote(upload_id)}",
                              body)
    check(status, "CompleteMultipartUpload", data)
    if b"<Error>" in data:
        sys.exit(f"s3.py: CompleteMultipartUpload: {data[:300]!r}")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    command, endpoint, *rest = argv[1:]
    if command == "wait":
        wait(endpoint)
    elif command == "mkbucket":
        status, _, data = request(endpoint, "PUT", f"/{rest[0]}")
        check(status, f"creating bucket {rest[0]}", data)
    elif command == "size":
        status, headers, _ = request(endpoint, "HEAD", f"/{rest[0]}/{urllib.parse.quote(rest[1])}")
        if status != 200:
            sys.exit(f"s3.py: no object {rest[0]}/{rest[1]} (HTTP {status})")
        print({k.lower(): v for k, v in headers.items()}["content-length"])
    elif command == "delete":
        status, _, data = request(endpoint, "DELETE", f"/{rest[0]}/{urllib.parse.quote(rest[1])}")
        check(status, f"deleting {rest[0]}/{rest[1]}", data)
    elif command == "put":
        put(endpoint, *rest)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
