"""Benchmark of the naive and the real dispatcher: ``python -m lab.bench --help``.

- workload.py: the seeded workload, loaded through Center operations; correctness checks
- runs.py: throughput (pre-queued), latency at an offered rate, several dispatchers, API
- dispatchers.py: dispatcher processes started, awaited and stopped for a run
- posting.py: the one API poster (concurrent clients POSTing contacts)
- api.py: ``python -m lab.bench.api``, contacts created per second through the API
- profile.py: INFO commandstats per assignment, SLOWLOG, cProfile
- plot.py: the scaling curves (plotly HTML, PNG when possible)
- main.py: the command line and the ratios the targets are judged by
"""
