.PHONY: weights

# Reproduce the shipped model from the shared development photos (2 CPU cores, a few minutes).
weights:
	nice -n 10 .venv/bin/python -m training train --manifest /work/shared/data/real/manifest.csv --out weights
