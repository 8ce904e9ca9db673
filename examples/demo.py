"""Placeholder until the real demo is written: fails so nobody mistakes it for one."""

import sys

print("demo not yet written")
sys.exit(1)
