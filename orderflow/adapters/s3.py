"""Files in an S3 bucket (label files): a failed write is a :class:`TransientError` (the caller retries),
a missing file is :class:`NotFound`."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from orderflow.adapters.aws import client
from orderflow.errors import NotFound, TransientError


class S3Files:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as err:
            raise TransientError("the file could not be stored; retry", key=key) from err

    def get(self, key: str) -> bytes:
        try:
            return client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound("the file is missing from storage", key=key) from err
            raise
