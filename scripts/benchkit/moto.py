"""moto's S3 server on 127.0.0.1, for the sections that use an S3 remote."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

from .core import Bench


class MotoS3:
    """moto's S3 server on 127.0.0.1 for the bench (None where moto is not installed)."""

    def __init__(self, b: Bench) -> None:

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        b.env.update(creds, AWS_DEFAULT_REGION="us-east-1", NO_PROXY="127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=b.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import boto3

        self.s3 = boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", **_boto_creds(creds)
        )
        for _ in range(200):
            with contextlib.suppress(Exception):
                self.s3.list_buckets()
                return
            time.sleep(0.05)
        raise SystemExit("bench: moto server did not start")

    def bucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        return f"s3://{name}/store"

    def keys(self, url: str) -> list[tuple[str, int]]:
        bucket = url.split("/")[2]
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]

    def empty(self, url: str) -> None:
        bucket = url.split("/")[2]
        for key, _ in self.keys(url):
            self.s3.delete_object(Bucket=bucket, Key=key)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _boto_creds(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
