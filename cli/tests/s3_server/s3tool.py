"""The tests' hands on an S3 server, through boto3: buckets, objects, the multipart
uploads a job leaves open and the pieces in them, and the ETag a multipart upload of a
file would give. Reads the endpoint and keys from the AWS_* environment."""

import hashlib
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
    if command == "etag-of":  # file piece-size -> the ETag of its multipart upload
        print(json.dumps(multipart_etag(args[0], int(args[1]))))
        return
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
    elif command == "pieces":  # bucket key upload-id -> [size of piece 1, ...], or null: no such upload
        try:
            listed = s3.list_parts(Bucket=args[0], Key=args[1], UploadId=args[2])
        except s3.exceptions.NoSuchUpload:
            print("null")
        else:
            print(json.dumps([p["Size"] for p in sorted(listed.get("Parts", []), key=lambda p: p["PartNumber"])]))
    elif command == "head":  # bucket key -> {"etag": ..., "size": ...}
        head = s3.head_object(Bucket=args[0], Key=args[1])
        print(json.dumps({"etag": head["ETag"].strip('"'), "size": head["ContentLength"]}))
    else:
        sys.exit(f"unknown command {command}")


def multipart_etag(file, piece):
    """The ETag S3 gives an object made by a multipart upload of `file` in pieces of `piece`
    bytes: the MD5 of the pieces' MD5s, then the number of pieces."""
    digests = []
    with open(file, "rb") as f:
        while True:
            chunk = f.read(piece)
            if not chunk and digests:
                break
            digests.append(hashlib.md5(chunk).digest())
            if len(chunk) < piece:
                break
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


if __name__ == "__main__":
    main()
