"""Benchmark of the naive and the real dispatcher: ``python -m lab.bench --help``.

- workload.py: the seeded workload, loaded through Center operations; correctness checks
- runs.py: throughput (pre-queued), latency at an offered rate, dispatcher processes, API
- profile.py: INFO commandstats per assignment, SLOWLOG, cProfile
- plot.py: the scaling curves (plotly HTML, PNG when possible)
- main.py: the command line and the ratios the targets are judged by
"""
