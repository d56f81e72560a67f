"""The benchmark of issue 8: a loopback feed farm and contenders measured side by side.

Run it with `python -m bench` (bench/run.py); results go in bench/RESULTS.md.
"""
