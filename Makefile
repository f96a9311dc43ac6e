.PHONY: weights bench

# Reproduce the shipped model from the shared development photos (2 CPU cores, a few minutes).
weights:
	nice -n 10 .venv/bin/python -m training train --manifest ../shared/data/real/manifest.csv --recognition ../shared/data/watches/manifest.csv --out weights

# One benchmark report (ledger, vision, API on SQLite and PostgreSQL): bench/results/<date>.json and .md.
bench:
	.venv/bin/python bench/report.py
