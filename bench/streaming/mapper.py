#!/usr/bin/env python3
"""A Hadoop Streaming wordcount mapper: `word<TAB>1` for every run of ASCII letters."""

import re
import sys

WORD = re.compile(r"[A-Za-z]+")

write = sys.stdout.write
for line in sys.stdin:
    for word in WORD.findall(line):
        write(f"{word}\t1\n")
