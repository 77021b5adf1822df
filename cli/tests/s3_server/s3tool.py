"""The tests' hands on an S3 server, through boto3: buckets, objects and the multipart
uploads a job leaves open. Reads the endpoint and keys from the AWS_* environment."""

import json
import os
import sys

import boto3


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def main():
    command, *args = sys.argv[1:]
    s3 = client()
    if command == "create-bucket":
        s3.create_bucket(Bucket=args[0])
    elif command == "put":  # bucket key file
        s3.upload_file(args[2], args[0], args[1])
    elif command == "get":  # bucket key file
        s3.download_file(args[0], args[1], args[2])
    elif command == "list":  # bucket prefix -> [key, ...]
        paginator = s3.get_paginator("list_objects_v2")
        keys = [o["Key"] for page in paginator.paginate(Bucket=args[0], Prefix=args[1]) for o in page.get("Contents", [])]
        print(json.dumps(keys))
    elif command == "uploads":  # bucket -> [[key, upload id], ...] still open
        listed = s3.list_multipart_uploads(Bucket=args[0])
        print(json.dumps([[u["Key"], u["UploadId"]] for u in listed.get("Uploads", [])]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
