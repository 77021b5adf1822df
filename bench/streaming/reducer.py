#!/usr/bin/env python3
"""A Hadoop Streaming wordcount reducer: sums the counts of each key of its sorted input."""

import sys

write = sys.stdout.write
current, total = None, 0
for line in sys.stdin:
    key, _, value = line.rstrip("\n").partition("\t")
    if key != current:
        if current is not None:
            write(f"{current}\t{total}\n")
        current, total = key, 0
    total += int(value)
if current is not None:
    write(f"{current}\t{total}\n")
