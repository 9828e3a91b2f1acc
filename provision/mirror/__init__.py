"""A content-addressed mirror of locked files in an OSS bucket (design.md §8).

Each locked file is stored once under its sha256 (`[PREFIX/]sha256/ab/abcdef…`) with its lock
metadata as object metadata: private, server-side encrypted, uploaded multipart and resumably
(`push`), and read first by `sync --mirror` through a presigned GET on the ordinary byte path,
falling back to the original source only when the mirror lacks the object (`source`).
"""
